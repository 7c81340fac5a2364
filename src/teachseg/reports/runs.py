"""Load run folders written by ``teachseg train``, ``selftrain`` and ``experiment`` -- tolerantly.

Every reader returns what it could read and records a warning naming the file for anything missing or
corrupt, so that a report can still be built from a half-finished or damaged run (the readers of single
files are in :mod:`teachseg.reports.readers`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from teachseg.errors import DataError
from teachseg.reports.readers import Warnings, read_csv, read_json, read_run_file, read_yaml
from teachseg.runfiles import GenerationEntry, Lineage, SelftrainSummary, TrainSummary

RunKind = Literal["experiment", "selftrain", "train"]

_GEN_DIR = re.compile(r"^gen(\d+)$")

# --- run structures -------------------------------------------------------------------------------------

METRIC_COLUMNS = ("epoch", "train_loss", "val_loss", "val_dice", "val_jaccard")
PER_IMAGE_COLUMNS = ("id", "dice", "jaccard")


@dataclass
class TrainRun:
    """One training run folder (a plain run, or a generation inside a self-training run)."""

    path: Path
    config: dict[str, Any] | None = None
    split: dict[str, Any] | None = None
    metrics: list[dict[str, Any]] = field(default_factory=list)
    summary: TrainSummary | None = None
    per_image: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    pred_index: dict[str, str] = field(default_factory=dict)
    fallback: GenerationEntry | None = None  # the lineage.json entry of a generation

    @property
    def name(self) -> str:
        return self.path.name

    def get(self, key: str) -> Any:
        """A summary value, falling back to the lineage entry, then to the metrics at the best epoch (a run
        killed before ``summary.json`` was written), then to the config."""
        for source in (self.summary, self.fallback):
            value = getattr(source, key, None) if source is not None else None
            if value is not None:
                return value
        best = self.best_metrics_row()
        if best is not None and key in {"train_loss", "val_loss", "val_dice", "val_jaccard"}:
            return best.get(key)
        if best is not None and key == "best_epoch":
            return int(best["epoch"])
        if key == "arch" and self.config:
            return (self.config.get("model") or {}).get("arch")
        if key == "encoder" and self.config:
            return (self.config.get("model") or {}).get("encoder")
        if key == "seed" and self.config:
            return self.config.get("seed")
        return None

    def best_metrics_row(self) -> dict[str, Any] | None:
        """The ``metrics.csv`` row of the epoch with the best (finite) validation Dice."""
        rows = [
            r for r in self.metrics if isinstance(r.get("val_dice"), float) and not math.isnan(r["val_dice"])
        ]
        return max(rows, key=lambda r: r["val_dice"]) if rows else None

    @property
    def eval_split(self) -> str | None:
        """The split the paired comparisons use: test when it has per-image results, else val."""
        if self.per_image.get("test"):
            return "test"
        if self.per_image.get("val"):
            return "val"
        return None

    def pred_files(self, split: str, image_id: str) -> tuple[Path, Path] | None:
        """The probability and ground-truth PNGs the run saved for ``image_id`` in ``split``, if any."""
        key = self.pred_index.get(image_id)
        if key is None:
            return None
        base = self.path / "pred" / split
        return base / f"{key}_prob.png", base / f"{key}_gt.png"


@dataclass
class PseudoSet:
    """The pseudo-labels of one generation: their folder and ``manifest.json``."""

    generation: int
    path: Path
    manifest: dict[str, Any] | None


@dataclass
class SelfTrainRun:
    """One self-training run folder: its generations (``gen0`` is the Teacher), lineage and pseudo-labels."""

    path: Path
    config: dict[str, Any] | None = None
    split: dict[str, Any] | None = None
    generations: dict[int, TrainRun] = field(default_factory=dict)
    lineage: Lineage | None = None
    summary: SelftrainSummary | None = None
    pseudo: dict[int, PseudoSet] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def teacher(self) -> TrainRun | None:
        """Generation 0 (the Teacher), when its folder was found."""
        return self.generations.get(0)

    def final_generation(self) -> int | None:
        """The generation of the final model, as ``lineage.json`` (else ``summary.json``) records it."""
        if self.lineage is not None and "final_generation" in self.lineage.model_fields_set:
            return self.lineage.final_generation
        if self.summary is not None:
            return self.summary.final_generation
        return None

    def student(self) -> tuple[TrainRun | None, str]:
        """The student to compare with the teacher, and how it was chosen.

        The final model's generation when a student was accepted, otherwise the best student by validation
        Dice (the study compares Teacher and Student even when the Student did not win).
        """
        final = self.final_generation()
        if final and final in self.generations:
            return self.generations[final], f"gen{final} (final)"
        students = [g for g in self.generations if g > 0]
        if not students:
            return None, "no student generation"

        def score(g: int) -> float:
            v = self.generations[g].get("val_dice")
            return float(v) if isinstance(v, (int, float)) and not math.isnan(v) else -math.inf

        best = max(students, key=score)
        return self.generations[best], f"gen{best} (best; none accepted)"


@dataclass
class ExperimentEntry:
    """One run of an experiment as ``experiment.json`` lists it, with the run loaded (None when missing)."""

    arch: str
    student_arch: str | None
    seed: int | None
    dir: str
    status: str
    run: SelfTrainRun | None = None
    method: str | None = None  # selftrain.method, when the experiment compares methods
    label_fraction: float | None = None  # data.label_fraction, when the experiment varies it


@dataclass
class Experiment:
    """An experiment folder: ``experiment.json``, its config and its runs."""

    path: Path
    meta: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    entries: list[ExperimentEntry] = field(default_factory=list)

    @property
    def name(self) -> str:
        return (self.meta or {}).get("name") or self.path.name


Loaded = Experiment | SelfTrainRun | TrainRun


# --- detection and loading ------------------------------------------------------------------------------


def _gen_dirs(path: Path) -> dict[int, Path]:
    found = {}
    for child in path.iterdir() if path.is_dir() else []:
        m = _GEN_DIR.match(child.name)
        if m and child.is_dir():
            found[int(m.group(1))] = child
    return dict(sorted(found.items()))


def _is_selftrain(path: Path) -> bool:
    return (path / "lineage.json").is_file() or bool(_gen_dirs(path))


def _is_train(path: Path) -> bool:
    return any((path / n).exists() for n in ("summary.json", "metrics.csv", "model", "val_per_image.csv"))


def detect_kind(path: Path) -> RunKind:
    """Tell an experiment, a self-training run and a single training run apart from their files."""
    path = Path(path)
    if not path.exists():
        raise DataError(
            "run folder not found",
            path=path,
            fix="give the folder written by teachseg train/selftrain/experiment",
        )
    if not path.is_dir():
        raise DataError("not a folder", path=path, fix="give the run folder, not a file inside it")
    if (path / "experiment.json").exists():
        return "experiment"
    if _is_selftrain(path):
        return "selftrain"
    if _is_train(path):
        return "train"
    if any(c.is_dir() and _is_selftrain(c) for c in path.iterdir()):
        return "experiment"
    raise DataError(
        "no run found here (no experiment.json, lineage.json, gen0/, summary.json or metrics.csv)",
        path=path,
        fix="give a folder written by teachseg train, selftrain or experiment",
    )


def load_train_run(path: Path, warn: Warnings) -> TrainRun:
    """Load a training run folder, with a warning for every file missing or damaged."""
    run = TrainRun(path=path)
    if not path.is_dir():
        warn.add(path, "run folder missing")
        return run
    run.config = read_yaml(path / "config.yaml", warn, required=False)
    run.split = read_json(path / "split.json", warn, required=False)
    run.metrics = read_csv(path / "metrics.csv", warn, METRIC_COLUMNS)
    run.metrics.sort(key=lambda r: r["epoch"])
    run.summary = read_run_file(TrainSummary, path / TrainSummary.FILE, warn)
    has_test = (path / "test_per_image.csv").exists() or (
        run.summary is not None and run.summary.test_dice is not None
    )
    for split in ("val", "test"):
        rows = read_csv(
            path / f"{split}_per_image.csv", warn, PER_IMAGE_COLUMNS, required=split == "val" or has_test
        )
        if rows:
            run.per_image[split] = rows
    index = read_json(path / "pred" / "index.json", warn, required=False)
    if isinstance(index, dict):
        run.pred_index = {str(k): str(v) for k, v in index.items()}
    return run


def load_selftrain_run(path: Path, warn: Warnings) -> SelfTrainRun:
    """Load a self-training run folder and its generations, warning for every file missing or damaged."""
    run = SelfTrainRun(path=path)
    if not path.is_dir():
        warn.add(path, "self-training run folder missing")
        return run
    run.config = read_yaml(path / "config.yaml", warn)
    run.split = read_json(path / "split.json", warn)
    run.lineage = read_run_file(Lineage, path / Lineage.FILE, warn)
    run.summary = read_run_file(SelftrainSummary, path / SelftrainSummary.FILE, warn)
    dirs = _gen_dirs(path)
    entries: dict[int, GenerationEntry] = {}
    for gen in run.lineage.generations if run.lineage is not None else []:
        entries[gen.generation] = gen
        dirs.setdefault(gen.generation, path / (gen.run_dir or f"gen{gen.generation}"))
    if 0 not in dirs:
        warn.add(path / "gen0", "teacher run folder missing")
    for g, d in sorted(dirs.items()):
        entry = entries.get(g)
        if g == 0 and d.is_dir() and not _is_train(d) and (d / "config.json").is_file():
            # `selftrain.teacher_model`: generation 0 is an existing model folder, not a run of its own.
            warn.add(
                d, "the Teacher is an external model folder: no training curves or per-image results for it"
            )
            run.generations[g] = TrainRun(path=d, config=run.config, split=run.split, fallback=entry)
            continue
        gen_run = load_train_run(d, warn)
        gen_run.fallback = entry
        if gen_run.split is None:
            gen_run.split = run.split
        if gen_run.config is None:
            gen_run.config = run.config
        run.generations[g] = gen_run
    pseudo_root = path / "pseudo"
    for d in sorted(pseudo_root.iterdir()) if pseudo_root.is_dir() else []:
        m = _GEN_DIR.match(d.name)
        if m and d.is_dir():
            manifest = read_json(d / "manifest.json", warn)
            run.pseudo[int(m.group(1))] = PseudoSet(
                int(m.group(1)), d, manifest if isinstance(manifest, dict) else None
            )
    return run


def load_experiment(path: Path, warn: Warnings) -> Experiment:
    """Load an experiment folder and every run it lists (or, without a list, the run folders beside it)."""
    exp = Experiment(path=path)
    meta = read_json(path / "experiment.json", warn)
    exp.meta = meta if isinstance(meta, dict) else None
    exp.config = read_yaml(path / "config.yaml", warn)
    listed: list[dict[str, Any]] = [
        r for r in (exp.meta or {}).get("runs") or [] if isinstance(r, dict) and r.get("dir")
    ]
    if not listed:
        if exp.meta is not None:
            warn.add(path / "experiment.json", "lists no runs; using the run folders found beside it")
        for child in sorted(path.iterdir()):
            if child.is_dir() and _is_selftrain(child):
                listed.append({"dir": child.name, "status": "done"})
    for item in listed:
        d = path / str(item["dir"])
        status = str(item.get("status") or "done")
        run = None
        if d.is_dir():
            run = load_selftrain_run(d, warn)
            if status != "done":
                warn.add(d, f"run marked '{status}' in experiment.json; using what it wrote")
        elif status == "done":
            warn.add(d, "run folder missing (marked done in experiment.json)")
        else:
            warn.add(d, f"run {status}; not in the report")
        teacher = run.teacher if run else None
        arch = item.get("arch") or (teacher.get("arch") if teacher else None) or "unknown"
        seed = item.get("seed")
        if seed is None and teacher is not None:
            seed = teacher.get("seed")
        entry = ExperimentEntry(
            arch=str(arch),
            student_arch=item.get("student_arch"),
            seed=int(seed) if isinstance(seed, (int, float)) else None,
            dir=str(item["dir"]),
            status=status,
            run=run,
            method=str(item["method"]) if item.get("method") else None,
            label_fraction=float(item["label_fraction"])
            if isinstance(item.get("label_fraction"), (int, float))
            else None,
        )
        exp.entries.append(entry)
    return exp


def load(path: Path, warn: Warnings) -> tuple[RunKind, Loaded]:
    """Detect the folder kind and load it."""
    path = Path(path)
    kind = detect_kind(path)
    loaded: Loaded
    if kind == "experiment":
        loaded = load_experiment(path, warn)
        if not any(e.run is not None for e in loaded.entries):
            raise DataError(
                "the experiment has no run folders to report on",
                path=path,
                fix="run teachseg experiment first",
            )
    elif kind == "selftrain":
        loaded = load_selftrain_run(path, warn)
    else:
        loaded = load_train_run(path, warn)
    return kind, loaded
