"""Experiments: the grid architectures x seeds (x methods x label fractions), each a run of
``selftrain.method``; finished runs are reused.

With ``experiment.methods`` and ``experiment.label_fractions`` every method runs at every label fraction on
the same split per seed (the labelled images at 1/8 are a subset of those at 1/4, see
:mod:`teachseg.data.stratify`). At a label fraction of 1 only ``supervised`` (the fully supervised ceiling) and
``pretrain`` (which pretrains on the training images themselves) run: the other methods would have nothing
unlabelled (unless the data brings its own unlabelled images, in which case they run too). A seed's
pretraining is made once, under the experiment folder, and serves every method and label fraction that uses it.

With ``train.stop: converge`` (the default) every model trains until validation Dice stops improving, each
under the cap ``train.converge.max_steps``; the ``supervised`` runs (the baseline of every gain, and the
ceiling) get the cap of the grid's longest arm instead (:func:`baseline_max_steps`: a teacher_student run
trains a Teacher and up to ``max_generations`` Students), so the cap can never be what keeps the baseline
below a method that trained longer.

A run folder is reused (finished) or resumed (interrupted) only when the result-affecting fields of its
config match the experiment's (see :mod:`teachseg.training.identity`); otherwise the experiment stops
before training anything and lists the runs and keys that differ, or, with ``overwrite``, retrains them.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
from pathlib import Path
from typing import Any

from teachseg.config import Config
from teachseg.errors import ConfigError, TeachsegError
from teachseg.io import read_json, write_json, write_text
from teachseg.runfiles import Lineage, NewerSchemaError, RunFileError, SelftrainSummary
from teachseg.selftrain.methods import planned_epochs, run_method
from teachseg.training.fit import is_child_rank
from teachseg.training.identity import (
    config_drift,
    config_hash,
    describe_changes,
    needs_more_generations,
    record_config,
    why_not_extended,
)
from teachseg.training.progress import as_reporter

EXPERIMENT = "experiment.json"
#: Methods that run without unlabelled images (``pretrain`` learns from the training images themselves).
LABELLED_ONLY = ("supervised", "pretrain")


def run_dirname(
    arch: str,
    student_arch: str | None,
    seed: int,
    method: str | None = None,
    label_fraction: float | None = None,
) -> str:
    """A run's folder name: ``linknet_seed42``, ``linknet-to-fpn_seed42`` for a Student of another arch, and
    with a method and label fraction in the grid ``fixmatch_l0.25_linknet_seed42``."""
    pair = arch if not student_arch or student_arch == arch else f"{arch}-to-{student_arch}"
    prefix = "".join(
        [f"{method}_" if method else "", f"l{label_fraction:g}_" if label_fraction is not None else ""]
    )
    return f"{prefix}{pair}_seed{seed}"


def plan(cfg: Config, *, has_own_unlabelled: bool | None = None) -> list[dict[str, Any]]:
    """The grid of runs, one per (method, label fraction, architecture, seed); its names were checked when
    ``cfg`` loaded. ``has_own_unlabelled``: the data brings unlabelled images, so every method can run at a
    label fraction of 1 (default: whether ``data.unlabelled_dirs`` or ``root/unlabelled/`` exist)."""
    if has_own_unlabelled is None:
        has_own_unlabelled = bool(cfg.data.unlabelled_dirs) or _has_unlabelled_folder(cfg)
    e = cfg.experiment
    methods: list[str | None] = list(e.methods) or [None]
    fractions: list[float | None] = list(e.label_fractions) or [None]
    runs = []
    for method in methods:
        for fraction in fractions:
            if fraction == 1.0 and method not in (None, *LABELLED_ONLY) and not has_own_unlabelled:
                continue  # nothing unlabelled: the ceiling is `supervised` at 1
            for arch in e.archs:
                student = e.student_archs.get(arch) or cfg.selftrain.student.arch
                for seed in e.seeds:
                    run: dict[str, Any] = {
                        "arch": arch,
                        "student_arch": student or arch,
                        "seed": seed,
                        "dir": run_dirname(arch, student, seed, method, fraction),
                    }
                    if method is not None:
                        run["method"] = method
                    if fraction is not None:
                        run["label_fraction"] = fraction
                    runs.append(run)
    return runs


def baseline_max_steps(cfg: Config) -> int:
    """The step cap of the grid's ``supervised`` runs: the most optimiser steps any arm of the grid may take
    (``train.converge.max_steps`` per model; teacher_student trains a Teacher and up to
    ``selftrain.max_generations`` Students, the other methods one model).

    Example:
        >>> cfg = Config.model_validate({"experiment": {"methods": ["supervised", "teacher_student"]}})
        >>> baseline_max_steps(cfg) == (1 + cfg.selftrain.max_generations) * cfg.train.converge.max_steps
        True
    """
    per_model = cfg.train.converge.max_steps
    methods = cfg.experiment.methods or [cfg.selftrain.method]
    models = 1 + cfg.selftrain.max_generations if "teacher_student" in methods else 1
    return per_model * models


def run_config(cfg: Config, run: dict[str, Any]) -> Config:
    """The config of one run of the grid: the experiment's, with the run's name, folder, seed and arch(s);
    a ``supervised`` run that converges gets :func:`baseline_max_steps` as its cap."""
    data = cfg.to_dict()
    data["name"] = run["dir"]
    data["output_dir"] = str(cfg.run_dir)
    data["seed"] = run["seed"]
    data["model"]["arch"] = run["arch"]
    if run["student_arch"] != run["arch"]:
        data["selftrain"]["student"]["arch"] = run["student_arch"]
    if "method" in run:
        data["selftrain"]["method"] = run["method"]
    if "label_fraction" in run:
        data["data"]["label_fraction"] = run["label_fraction"]
    if data["selftrain"]["method"] == "supervised" and cfg.train.stop == "converge":
        data["train"]["converge"]["max_steps"] = baseline_max_steps(cfg)
    return Config.model_validate(data)


def check_reuse(cfg: Config, runs: list[dict[str, Any]], *, overwrite: bool = False, say: Any = None) -> None:
    """Refuse (or, with ``overwrite``, delete) run folders made with a config other than this experiment's."""
    drifted = []
    for run in runs:
        rdir = cfg.run_dir / run["dir"]
        rcfg = run_config(cfg, run)
        changes = config_drift(rdir, rcfg) if rdir.is_dir() else []
        if changes:
            drifted.append((run["dir"], rdir, changes, why_not_extended(rdir, rcfg, changes)))
    if not drifted:
        return
    if not overwrite:
        listed = "; ".join(f"{name} ({describe_changes(ch, 4)}{why})" for name, _, ch, why in drifted[:5])
        more = f" and {len(drifted) - 5} more" if len(drifted) > 5 else ""
        raise ConfigError(
            f"{len(drifted)} earlier run(s) were made with a different config and cannot be reused or "
            f"resumed: {listed}{more}",
            path=cfg.run_dir,
            fix="restore those values, pass --overwrite to retrain those runs, or choose another name (--set name=...)",
        )
    for name, rdir, changes, why in drifted:
        if say is not None:
            say(f"[yellow]{name}: config changed ({describe_changes(changes, 4)}{why}), retraining[/]")
        shutil.rmtree(rdir)


def run_experiment(
    cfg: Config, *, resume: bool = True, overwrite: bool = False, console: Any = None
) -> dict[str, Any]:
    """Run every (architecture, seed) self-training run in ``cfg.run_dir``, reusing finished ones.

    Earlier run folders are reused only when made with the same result-affecting config; with
    ``overwrite`` the ones that differ are deleted and trained again, otherwise nothing trains. ``console``
    hears of every run and phase (see :mod:`teachseg.training.progress`).
    """
    report = as_reporter(console)
    say = report.print
    runs = plan(cfg)
    exp_dir = cfg.run_dir
    check_reuse(cfg, runs, overwrite=overwrite, say=say)
    exp_dir.mkdir(parents=True, exist_ok=True)
    path = exp_dir / EXPERIMENT
    previous = read_json(path) if path.is_file() else {}
    state: dict[str, Any] = {
        "name": cfg.name,
        "archs": cfg.experiment.archs,
        "seeds": cfg.experiment.seeds,
        "methods": cfg.experiment.methods,
        "label_fractions": cfg.experiment.label_fractions,
        "runs": [{**r, "status": "pending"} for r in runs],
        "config_hash": config_hash(cfg),
        "command": " ".join(["teachseg", *sys.argv[1:]]) if sys.argv else "teachseg experiment",
        "started": previous.get("started") or dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "finished": None,
    }
    # DDP: every rank runs the grid (the fits must line up); rank 0 alone writes the files
    lead = not is_child_rank()
    if lead:
        write_text(exp_dir / "config.yaml", cfg.to_yaml())
        write_json(path, state)
    for i, run in enumerate(state["runs"], 1):
        rdir = exp_dir / run["dir"]
        rcfg = run_config(cfg, run)
        extend = needs_more_generations(rdir, rcfg)
        report.stage(f"run {i}/{len(runs)}")  # its folder is on the line printed above
        if finished(rdir) and not extend:
            say(f"[dim]run {i}/{len(runs)} {run['dir']}: finished earlier, reused[/]")
            report.skip_epochs(planned_epochs(rcfg)[0])
            run["status"] = "done"
            continue
        if extend:
            say(
                f"[bold cyan]run {i}/{len(runs)}[/] {run['dir']}: the generation cap ended it, continuing up to "
                f"max_generations={rcfg.selftrain.max_generations}"
            )
        else:
            say(f"[bold cyan]run {i}/{len(runs)}[/] {run['dir']}")
        rdir.mkdir(parents=True, exist_ok=True)
        if lead:
            record_config(rdir, rcfg)
        try:
            run_method(rcfg, rdir, resume=True, console=report)
            run["status"] = "done"
        except TeachsegError:
            raise
        except Exception as exc:  # one broken run must not lose the others
            report.finish()  # the phase it was in ends here
            run["status"] = "failed"
            run["error"] = f"{type(exc).__name__}: {exc}"
            say(f"[red]run {run['dir']} failed[/]: {run['error']}")
        if lead:
            write_json(path, state)
    state["finished"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    if lead:
        write_json(path, state)
    return state


def planned_experiment_epochs(cfg: Config) -> tuple[int | None, bool]:
    """The epochs every run of the experiment's grid trains together, and whether that is an upper bound
    (some teacher_student run may stop before its generation cap): :func:`planned_epochs` summed; None when
    a run's length is not known (it converges), since then the whole is not known either."""
    plans = [planned_epochs(run_config(cfg, run)) for run in plan(cfg)]
    counts = [n for n, _ in plans]
    if any(n is None for n in counts):
        return None, False
    return sum(n for n in counts if n is not None), any(bound for _, bound in plans)


def finished(run_dir: Path) -> bool:
    """Whether the self-training run in ``run_dir`` ended: its ``summary.json`` and ``lineage.json`` read.

    A damaged file means the run is resumed (which rewrites it); one from a newer teachseg is refused.
    """
    try:
        SelftrainSummary.read(run_dir / SelftrainSummary.FILE)
        Lineage.read(run_dir / Lineage.FILE)
    except NewerSchemaError:
        raise
    except RunFileError:
        return False
    return True


def _has_unlabelled_folder(cfg: Config) -> bool:
    root = cfg.data.root
    return bool(root is not None and (Path(root) / "unlabelled").is_dir())


def experiment_dir_ok(path: Path) -> bool:
    """Whether ``path`` is an experiment folder (it holds ``experiment.json``)."""
    return (path / EXPERIMENT).is_file()
