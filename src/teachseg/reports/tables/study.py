"""The study's per-seed tables: Teacher and Student findings and their comparison (the paper's Tables 2-7)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from teachseg.reports.runs import TrainRun
from teachseg.reports.stats import summarize
from teachseg.reports.tables.model import Cell, Interval, PlusMinus, Table
from teachseg.reports.tables.model import integer as _int
from teachseg.reports.tables.model import number as _num


def has_test(runs: Sequence[TrainRun | None]) -> bool:
    """Whether any of ``runs`` was scored on a test split."""
    return any(r is not None and _num(r.get("test_dice")) is not None for r in runs)


def _stat_rows(columns: list[list[Any]], digits: list[int | None]) -> list[list[Cell]]:
    sums = [summarize(col) for col in columns]
    mean_row: list[Cell] = ["Mean ± SD"] + [
        PlusMinus(s.mean, s.sd, d) for s, d in zip(sums, digits, strict=True)
    ]
    ci_row: list[Cell] = ["95% CI (t)"] + [
        Interval(s.ci_low, s.ci_high, d) for s, d in zip(sums, digits, strict=True)
    ]
    return [mean_row, ci_row]


def findings_table(
    arch: str, role: str, runs: Sequence[tuple[int | None, TrainRun | None]], *, key: str
) -> Table:
    """Teacher or Student findings for one architecture (the study's Tables 2, 3, 5, 6)."""
    test = has_test([r for _, r in runs])
    cols = ["Seed", "Training Loss", "Validation Dice", "Validation Jaccard", "Optimum Epoch"]
    fields = ["train_loss", "val_dice", "val_jaccard", "best_epoch"]
    if test:
        cols += ["Test Dice", "Test Jaccard"]
        fields += ["test_dice", "test_jaccard"]
    rows: list[list[Cell]] = []
    for seed, run in runs:
        if run is None:
            rows.append([seed] + [None] * len(fields))
            continue
        vals: list[Cell] = [_int(run.get(f)) if f == "best_epoch" else _num(run.get(f)) for f in fields]
        rows.append([seed if seed is not None else _int(run.get("seed"))] + vals)
    digits = [1 if f == "best_epoch" else None for f in fields]
    footer = (
        _stat_rows([[r[i + 1] for r in rows] for i in range(len(fields))], digits) if len(rows) > 1 else []
    )
    enc = next((r.get("encoder") for _, r in runs if r is not None and r.get("encoder")), "resnet34")
    return Table(
        key=key,
        title=f"{arch_label(arch)} Architecture with {enc_label(enc)} Base: {role} Findings",
        columns=cols,
        rows=rows,
        footer=footer,
        notes=["Training loss is at the optimum (best validation Dice) epoch; 95% CI is t-based over seeds."],
    )


def comparison_table(
    arch: str, pairs: Sequence[tuple[int | None, TrainRun | None, TrainRun | None, str]], *, key: str
) -> Table:
    """Teacher and Student side by side with an Average row (the study's Tables 4 and 7)."""
    test = has_test([t for _, t, _, _ in pairs] + [s for _, _, s, _ in pairs])
    fields = ["train_loss", "val_dice", "val_jaccard"] + (["test_dice", "test_jaccard"] if test else [])
    short = ["TL", "VD", "VJ"] + (["TD", "TJ"] if test else [])
    rows: list[list[Cell]] = []
    for seed, teacher, student, chosen in pairs:
        row: list[Cell] = [seed]
        for run in (teacher, student):
            row += [_num(run.get(f)) if run is not None else None for f in fields]
        row.append(chosen)
        rows.append(row)
    n = len(fields)
    footer: list[list[Cell]] = []
    if rows:
        sums = [summarize([r[i + 1] for r in rows]) for i in range(2 * n)]
        footer = [
            ["Average"] + [s.mean if s.n else None for s in sums] + [""],
            ["SD"] + [s.sd for s in sums] + [""],
            ["95% CI (t)"] + [Interval(s.ci_low, s.ci_high) for s in sums] + [""],
        ]
    columns = ["Seed"] + [f"Teacher {s}" for s in short] + [f"Student {s}" for s in short] + ["Student model"]
    enc = next((t.get("encoder") for _, t, _, _ in pairs if t is not None and t.get("encoder")), "resnet34")
    legend = "Training Loss (TL), Validation Dice (VD), Validation Jaccard (VJ)"
    if test:
        legend += ", Test Dice (TD), Test Jaccard (TJ)"
    return Table(
        key=key,
        title=f"{arch_label(arch)} Architecture with {enc_label(enc)} Base Comparison",
        columns=columns,
        rows=rows,
        footer=footer,
        notes=[legend + ". Teacher = generation 0."],
        groups=[("", 1), ("Teacher", n), ("Student", n), ("", 1)],
        short=["Seed"] + short + short + ["Student model"],
    )


_ARCH_LABELS = {
    "linknet": "LinkNet",
    "fpn": "FPN",
    "unet": "U-Net",
    "unetplusplus": "U-Net++",
    "deeplabv3plus": "DeepLabV3+",
}


def arch_label(arch: str | None) -> str:
    """The architecture's name as the paper prints it (``linknet`` -> ``LinkNet``)."""
    return _ARCH_LABELS.get(str(arch).lower(), str(arch))


def enc_label(enc: str | None) -> str:
    """The encoder's name as the paper prints it (``resnet34`` -> ``ResNet34``)."""
    return {"resnet34": "ResNet34", "resnet18": "ResNet18", "resnet50": "ResNet50"}.get(
        str(enc).lower(), str(enc)
    )
