"""Summary tables of a report: data splits, run summary, per-class Dice, worst cases, lineage, pseudo-labels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from teachseg.reports.runs import SelfTrainRun, TrainRun
from teachseg.reports.stats import summarize
from teachseg.reports.tables.model import Cell, Interval, Table
from teachseg.reports.tables.model import integer as _int
from teachseg.reports.tables.model import number as _num
from teachseg.runfiles import GenerationEntry, Lineage


def lineage_table(lineage: Lineage | None, gens: dict[int, TrainRun], *, key: str, title: str) -> Table:
    """Every generation of one self-training run: scores, pseudo-label set and the keep/reject decision."""
    cols = [
        "Gen",
        "Role",
        "Arch",
        "Train Loss",
        "Val Dice",
        "Val Jaccard",
        "Test Dice",
        "Best Epoch",
        "Pseudo images",
        "Mean conf.",
        "Decision",
    ]
    rows: list[list[Cell]] = []
    entries = list(lineage.generations) if lineage is not None else []
    if not entries:
        entries = [GenerationEntry(generation=g, role="teacher" if g == 0 else "student") for g in gens]
    quality = any(_num((e.pseudo or {}).get("dice_vs_withheld_masks")) is not None for e in entries)
    if quality:
        cols.insert(-1, "Pseudo Dice*")
    for e in entries:
        g = e.generation
        run = gens.get(g)
        pseudo: dict[str, Any] = e.pseudo or {}

        def pick(name: str, e: GenerationEntry = e, run: TrainRun | None = run) -> Any:
            v = getattr(e, name, None)
            return v if v is not None else (run.get(name) if run is not None else None)

        rows.append(
            [
                g,
                e.role,
                pick("arch"),
                _num(pick("train_loss")),
                _num(pick("val_dice")),
                _num(pick("val_jaccard")),
                _num(pick("test_dice")),
                _int(pick("best_epoch")),
                _int(pseudo.get("n_images")),
                _num(pseudo.get("mean_confidence")),
            ]
            + ([_num(pseudo.get("dice_vs_withheld_masks"))] if quality else [])
            + [e.decision]
        )
    notes = []
    if quality:
        notes.append("* Pseudo Dice: the pseudo-labels scored against the masks withheld by label_fraction.")
    if lineage is not None and "final_generation" in lineage.model_fields_set:
        notes.append(f"Final model: generation {lineage.final_generation}.")
    if lineage is not None and lineage.skipped_bad:
        notes.append(f"Skipped as bad: {lineage.skipped_bad}.")
    return Table(key=key, title=title, columns=cols, rows=rows, notes=notes)


def per_class_table(series: dict[str, dict[str, list[float]]], *, key: str, title: str) -> Table:
    """Per-class Dice of one or more models (e.g. Teacher and Student) side by side."""
    classes = sorted({c for per in series.values() for c in per})
    rows: list[list[Cell]] = []
    for cls in classes + (["all"] if len(classes) > 1 else []):
        row: list[Cell] = [cls]
        for per in series.values():
            vals = (
                [v for c, vs in per.items() for v in vs]
                if cls == "all" and "all" not in per
                else per.get(cls, [])
            )
            s = summarize(vals)
            row += [s.n, s.mean, s.sd, Interval(s.ci_low, s.ci_high)]
        rows.append(row)
    sub = ["Images", "Mean Dice", "SD", "95% CI (t)"]
    names = list(series)
    if len(names) == 1:
        return Table(key=key, title=title, columns=["Class"] + sub, rows=rows)
    return Table(
        key=key,
        title=title,
        columns=["Class"] + [f"{n} {c}" for n in names for c in sub],
        rows=rows,
        groups=[("", 1)] + [(n, len(sub)) for n in names],
        short=["Class"] + sub * len(names),
    )


def worst_table(items: Sequence[tuple[str, str, dict[str, Any]]], *, key: str = "worst_cases") -> Table:
    """The lowest per-image Dice: rows of (run name, split, per-image row)."""
    rows: list[list[Cell]] = [
        [
            run,
            split,
            r.get("id"),
            r.get("class"),
            _num(r.get("dice")),
            _num(r.get("jaccard")),
            _int(r.get("gt_pixels")),
            _int(r.get("pred_pixels")),
        ]
        for run, split, r in items
    ]
    return Table(
        key=key,
        title="Worst cases (lowest per-image Dice of the reported model)",
        columns=["Run", "Split", "Image", "Class", "Dice", "Jaccard", "GT pixels", "Pred pixels"],
        rows=rows,
    )


def run_summary_table(runs: Sequence[tuple[str, TrainRun]], *, key: str = "summary") -> Table:
    """One row per training run: scores, split sizes and wall time."""
    fields = [
        "arch",
        "seed",
        "train_loss",
        "val_dice",
        "val_jaccard",
        "best_epoch",
        "test_dice",
        "test_jaccard",
        "n_train",
        "n_val",
        "n_test",
        "n_pseudo",
        "wall_seconds",
    ]
    cols = [
        "Run",
        "Arch",
        "Seed",
        "Train Loss",
        "Val Dice",
        "Val Jaccard",
        "Best Epoch",
        "Test Dice",
        "Test Jaccard",
        "Train",
        "Val",
        "Test",
        "Pseudo",
        "Wall (s)",
    ]
    rows: list[list[Cell]] = []
    for name, run in runs:
        row: list[Cell] = [name]
        for f in fields:
            v = run.get(f)
            if f in {"seed", "best_epoch", "n_train", "n_val", "n_test", "n_pseudo"}:
                row.append(_int(v))
            elif f == "arch":
                row.append(v)
            elif f == "wall_seconds":
                fv = _num(v)
                row.append(round(fv, 1) if fv is not None else None)
            else:
                row.append(_num(v))
        rows.append(row)
    return Table(key=key, title="Run summary", columns=cols, rows=rows)


def split_table(runs: list[tuple[str, dict[str, Any] | None]]) -> Table:
    """How many images each run's split put in train, validation, test and unlabelled."""
    rows = []
    for name, split in runs:
        s = split or {}

        def n(k: str, s: dict[str, Any] = s) -> int | None:
            v = s.get(k)
            return len(v) if isinstance(v, list) else None

        rows.append(
            [
                name,
                n("train"),
                n("val"),
                n("test"),
                n("unlabelled"),
                n("label_dropped"),
                s.get("label_fraction"),
                s.get("root"),
            ]
        )
    return Table(
        key="splits",
        title="Data splits",
        columns=[
            "Run",
            "Train",
            "Validation",
            "Test",
            "Unlabelled",
            "Masks dropped",
            "Label fraction",
            "Dataset root",
        ],
        rows=rows,
    )


def pseudo_stats_table(runs: list[tuple[str, SelfTrainRun]]) -> Table | None:
    """One row per pseudo-label set (None when there are none)."""
    rows: list[list[Any]] = []
    for name, run in runs:
        for gen, ps in sorted(run.pseudo.items()):
            st = (ps.manifest or {}).get("stats") or {}
            rows.append(
                [
                    name,
                    gen,
                    (ps.manifest or {}).get("teacher"),
                    st.get("n_images"),
                    st.get("mean_confidence"),
                    st.get("confident_share"),
                    st.get("positive_share"),
                ]
            )
    if not rows:
        return None
    return Table(
        key="pseudo_labels",
        title="Pseudo-label sets",
        columns=["Run", "Gen", "Teacher", "Images", "Mean confidence", "Confident share", "Positive share"],
        rows=rows,
    )
