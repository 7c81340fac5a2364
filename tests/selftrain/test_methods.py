"""selftrain.method: every method writes the same kind of run folder; the experiment grid of methods x
label fractions shares one split per seed."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from teachseg.config import Config
from teachseg.runfiles import Lineage, SelftrainSummary, TrainSummary
from teachseg.selftrain.experiment import plan, run_config
from teachseg.selftrain.methods import run_method
from teachseg.training.prepare import prepare_data
from tests.conftest import TINY, teachseg_cmd


def _cfg(root: Path, out: Path, **over) -> Config:
    data = {
        **TINY,
        "output_dir": str(out),
        "data": {**TINY["data"], "root": str(root), "test_fraction": 0.2},
    }
    for key, value in over.items():
        section, _, name = key.partition("__")
        if name:
            data.setdefault(section, {})
            data[section] = {**data[section], name: value}
        else:
            data[section] = value
    return Config.model_validate(data)


@pytest.mark.parametrize(
    ("method", "epoch_over"),
    [("fixmatch", "labelled"), ("fixmatch", "unlabelled"), ("supervised", "labelled")],
)
def test_method_writes_a_one_generation_run_folder(synth_data, tmp_path, method, epoch_over):
    cfg = _cfg(
        synth_data,
        tmp_path,
        selftrain__method=method,
        data={
            **TINY["data"],
            "root": str(synth_data),
            "test_fraction": 0.2,
            "label_fraction": 0.5,
            "select_fraction": 0.15,
        },
    )
    cfg.selftrain.online.confidence = 0.9
    cfg.selftrain.online.epoch_over = epoch_over  # type: ignore[assignment]
    summary = run_method(cfg, tmp_path / "run")
    run = tmp_path / "run"
    typed = SelftrainSummary.read(run / "summary.json")
    assert typed.model_extra is not None and typed.model_extra["method"] == method
    assert typed.final_model == "gen0/model" and typed.teacher is not None
    assert summary["final_generation"] == 0
    lineage = Lineage.read(run / "lineage.json")
    (gen,) = lineage.generations
    assert gen.role == method and gen.run_dir == "gen0"
    gen0 = TrainSummary.read(run / "gen0" / "summary.json")
    assert gen0.test_dice is not None and gen0.val_dice is not None
    # the selection images are scored, and the run records its steps, looks and the dataset's modality
    split = yaml.safe_load((run / "split.json").read_text())
    assert len(split["select"]) == 2 and gen0.select is not None and gen0.select.n == 2
    assert gen0.select_dice is not None and (run / "gen0" / "select_per_image.csv").is_file()
    assert split["modality"] == typed.modality == "he"  # the synthetic tiles are H&E colour
    assert typed.total_steps == gen0.steps and gen0.steps and typed.models_compared == 1
    assert gen0.stop == {"rule": "epochs", "stopped_by": "epochs", "epochs": cfg.train.epochs}
    assert gen0.augmentation == ("weak+strong:he" if method == "fixmatch" else "weak")
    with open(run / "gen0" / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == cfg.train.epochs
    if method == "fixmatch":
        assert typed.n_unlabelled > 0
        assert gen0.model_extra is not None and gen0.model_extra["epoch_over"] == epoch_over
        assert 0.0 <= float(rows[-1]["unl_confident"]) <= 1.0
        assert gen.pseudo is not None
        assert len(gen.pseudo["confident_share_per_epoch"]) == cfg.train.epochs
        # label_fraction 0.5 withheld masks: the final model is scored against them
        assert 0.0 <= gen.pseudo["dice_vs_withheld_masks"] <= 1.0 and gen.pseudo["n_withheld"] > 0
    else:
        assert typed.n_unlabelled == 0 and gen.pseudo is None
    import segmentation_models_pytorch as smp

    assert smp.from_pretrained(str(run / "gen0" / "model")) is not None


def test_online_method_with_nothing_unlabelled_says_so(tmp_path):
    from teachseg.cli import run
    from teachseg.data.synth import generate

    root = generate(tmp_path / "data", n_labelled=8, n_unlabelled=0, size=32, seed=0)
    cfg = {**TINY, "output_dir": str(tmp_path / "runs"), "data": {**TINY["data"], "root": str(root)}}
    cfg["selftrain"] = {"method": "mean_teacher"}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert run(["selftrain", str(path)]) != 0
    assert not (tmp_path / "runs" / "tiny" / "gen0" / "checkpoints").exists()


def test_experiment_grid_of_methods_and_label_fractions(synth_data, tmp_path):
    cfg = _cfg(
        synth_data,
        tmp_path,
        experiment={
            "archs": ["linknet"],
            "seeds": [1, 2],
            "methods": ["supervised", "fixmatch"],
            "label_fractions": [0.5, 0.25, 1],
        },
    )
    # the synthetic data brings its own unlabelled/ folder, so online methods run at 1 as well
    runs = plan(cfg)
    assert len(runs) == 2 * 3 * 2 and len({r["dir"] for r in runs}) == len(runs)
    assert "fixmatch_l0.25_linknet_seed1" in {r["dir"] for r in runs}
    # without unlabelled images of its own, only `supervised` runs at 1 (the ceiling)
    runs = plan(cfg, has_own_unlabelled=False)
    at_one = [r for r in runs if r["label_fraction"] == 1.0]
    assert {r["method"] for r in at_one} == {"supervised"} and len(runs) == 2 * 2 * 2 + 2

    # every method and fraction of a seed shares the split; fewer labels are a subset of more
    seen: dict[tuple[int, float], set[str]] = {}
    held_out: dict[int, tuple[list[str], list[str]]] = {}
    for r in runs:
        rcfg = run_config(cfg, r)
        assert rcfg.selftrain.method == r["method"] and rcfg.data.label_fraction == r["label_fraction"]
        data = prepare_data(rcfg, tmp_path / "prep" / r["dir"])
        ids = {rec.id for rec in data.train}
        key = (r["seed"], r["label_fraction"])
        assert seen.setdefault(key, ids) == ids
        vt = (sorted(data.split.val), sorted(data.split.test))
        assert held_out.setdefault(r["seed"], vt) == vt
    for seed in (1, 2):
        assert seen[(seed, 0.25)] <= seen[(seed, 0.5)] <= seen[(seed, 1.0)]


def test_the_supervised_runs_of_a_grid_may_train_as_long_as_its_longest_arm(tmp_path):
    grid = {"archs": ["linknet"], "seeds": [1], "label_fractions": [0.25, 1]}
    converge = {**TINY["train"], "stop": "converge", "converge": {"max_steps": 500}}

    def caps(methods: list[str], train: dict) -> dict[tuple[str, float], int]:
        cfg = _cfg(
            tmp_path,
            tmp_path,
            train=train,
            selftrain={"max_generations": 3},
            experiment={**grid, "methods": methods},
        )
        return {
            (r["method"], r["label_fraction"]): run_config(cfg, r).train.converge.max_steps
            for r in plan(cfg, has_own_unlabelled=False)
        }

    # teacher_student trains a Teacher and up to 3 Students of at most 500 steps each: the baseline and the
    # ceiling may take 2000
    assert caps(["supervised", "teacher_student", "fixmatch"], converge) == {
        ("supervised", 0.25): 2000,
        ("supervised", 1.0): 2000,
        ("teacher_student", 0.25): 500,
        ("fixmatch", 0.25): 500,
    }
    # the online methods train one model
    assert caps(["supervised", "fixmatch"], converge)[("supervised", 0.25)] == 500
    # a grid of fixed epochs has no cap to raise
    assert set(caps(["supervised", "teacher_student"], TINY["train"]).values()) == {20000}


def _epochs_written(run_dir: Path) -> int:
    try:
        with open(run_dir / "gen0" / "metrics.csv", newline="") as fh:
            return len(list(csv.DictReader(fh)))
    except (FileNotFoundError, csv.Error):
        return 0


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*exists and is not empty")
def test_killed_online_run_resumes_to_the_uninterrupted_result(synth_data, tmp_path):
    """SIGKILL during epoch 2 of a FixMatch run (EMA teacher, feature dropout, two strong views), then
    --resume: the same selected epoch, scores and weights as an uninterrupted run."""
    from safetensors.torch import load_file

    from teachseg.cli import run

    cfg = {
        **TINY,
        "output_dir": str(tmp_path / "runs"),
        "data": {**TINY["data"], "root": str(synth_data), "label_fraction": 0.5},
        "train": {**TINY["train"], "epochs": 3},
        "selftrain": {
            "method": "fixmatch",
            "online": {"confidence": 0.9, "teacher": "ema", "feature_dropout": 0.3, "two_strong": True},
        },
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert run(["selftrain", str(path), "--set", "name=full"]) == 0

    killed = tmp_path / "runs" / "killed"
    log = open(tmp_path / "killed.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [*teachseg_cmd(), "selftrain", str(path), "--set", "name=killed"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 300
    try:
        while not (
            _epochs_written(killed) >= 1 and (killed / "gen0" / "checkpoints" / "last.ckpt").is_file()
        ):
            assert proc.poll() is None, (tmp_path / "killed.log").read_text()
            assert time.monotonic() < deadline, "no epoch finished within 5 minutes"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    assert not (killed / "summary.json").exists()
    assert run(["selftrain", str(path), "--set", "name=killed", "--resume"]) == 0

    full_rows = (tmp_path / "runs" / "full" / "gen0" / "metrics.csv").read_text()
    assert (killed / "gen0" / "metrics.csv").read_text() == full_rows
    a = load_file(str(tmp_path / "runs" / "full" / "gen0" / "model" / "model.safetensors"))
    b = load_file(str(killed / "gen0" / "model" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k].float() - b[k].float()).abs().max() <= 1e-5, k
