"""The report's header and setup section: title, config, command, key settings and the data splits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from teachseg.reports.document import Report, Section
from teachseg.reports.runs import Experiment, ExperimentEntry, SelfTrainRun, TrainRun
from teachseg.reports.sections.common import entry_name
from teachseg.reports.tables.summary import split_table

Splits = list[tuple[str, dict[str, Any] | None]]  # run name, its split.json


def config_hash(cfg: dict[str, Any] | None) -> str:
    """The config's hash as teachseg computes it (a plain hash of an older or hand-edited config)."""
    if not cfg:
        return "unknown"
    import hashlib
    import json

    try:
        from teachseg.config import build_config

        return build_config(cfg, "config.yaml").hash()
    except Exception:  # an older or hand-edited config: hash what is there
        return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:12]


def setup_rows(cfg: dict[str, Any] | None, split: dict[str, Any] | None) -> list[tuple[str, Any]]:
    """The key settings shown at the top of the report (missing ones left out)."""
    cfg = cfg or {}
    data, model, train, exp = (cfg.get(k) or {} for k in ("data", "model", "train", "experiment"))
    rows: list[tuple[str, Any]] = [
        ("Name", cfg.get("name")),
        ("Dataset root", (split or {}).get("root") or data.get("root")),
        (
            "Architecture / encoder",
            f"{model.get('arch')} / {model.get('encoder')} (weights: {model.get('encoder_weights')})"
            if model
            else None,
        ),
        ("Image size", data.get("image_size")),
        (
            "Validation / test fraction",
            f"{data.get('val_fraction')} / {data.get('test_fraction')}" if data else None,
        ),
        ("Label fraction", data.get("label_fraction")),
        ("Epochs / learning rate", f"{train.get('epochs')} / {train.get('lr')}" if train else None),
        ("Seed", cfg.get("seed")),
        ("Experiment archs / seeds", f"{exp.get('archs')} / {exp.get('seeds')}" if exp else None),
    ]
    return [(k, v) for k, v in rows if v is not None]


def describe_experiment(
    rep: Report, exp: Experiment, entries: list[ExperimentEntry], run_dir: Path
) -> Splits:
    """Fill the header of an experiment's report; return each run's split."""
    rep.title = f"Experiment report: {exp.name}"
    rep.config = exp.config or next((e.run.config for e in exp.entries if e.run and e.run.config), None)
    first_split = next((e.run.split for e in entries if e.run and e.run.split), None)
    rep.setup = setup_rows(rep.config, first_split)
    meta = exp.meta or {}
    rep.command = str(meta.get("command") or f"teachseg experiment {run_dir / 'config.yaml'}")
    rep.config_hash = str(meta.get("config_hash") or config_hash(rep.config))
    for key in ("started", "finished"):
        if meta.get(key):
            rep.setup.append((key.capitalize(), meta[key]))
    status = [f"{e.dir}: {e.status}" for e in exp.entries if e.status != "done" or e.run is None]
    if status:
        rep.setup.append(("Runs not done", ", ".join(status)))
    return [(entry_name(e), e.run.split if e.run else None) for e in entries]


def describe_selftrain(rep: Report, run: SelfTrainRun, run_dir: Path) -> Splits:
    """Fill the header of a self-training run's report; return its split."""
    rep.title = f"Self-training report: {run.name}"
    rep.config = run.config or (run.teacher.config if run.teacher else None)
    rep.setup = setup_rows(rep.config, run.split)
    if run.summary is not None and run.summary.stopped_because:
        rep.setup.append(("Stopped because", run.summary.stopped_because))
    rep.command = f"teachseg selftrain {run_dir / 'config.yaml'}"
    rep.config_hash = config_hash(rep.config)
    return [(run.name, run.split or (run.teacher.split if run.teacher else None))]


def describe_train(rep: Report, run: TrainRun, run_dir: Path) -> Splits:
    """Fill the header of a training run's report; return its split."""
    rep.title = f"Training report: {run.name}"
    rep.config = run.config
    rep.setup = setup_rows(rep.config, run.split)
    rep.command = f"teachseg train {run_dir / 'config.yaml'}"
    rep.config_hash = config_hash(rep.config)
    return [(run.name, run.split)]


def setup_section(splits: Splits) -> Section:
    """The setup section: the data splits of every run (the page shows the settings and software beside it)."""
    return Section("setup", "Setup", blocks=[split_table(splits)])
