"""The Teacher-versus-Student paired-statistics table, and how a comparison on validation images is marked."""

from __future__ import annotations

from collections.abc import Sequence

from teachseg.reports.stats import Paired
from teachseg.reports.tables.model import Cell, Interval, Table, fmt_p

SELECTION_BIASED = "selection-biased"
SELECTION_BIAS_NOTE = (
    "Rows marked selection-biased have no test split: they compare the models on the validation images "
    "that chose both models' best epochs and whether the Student replaced the Teacher, so their "
    "differences are optimistic. Set data.test_fraction (e.g. 0.2) to hold out test images that no "
    "decision has seen, and compare on those."
)


def selection_biased(split: str) -> bool:
    """Whether a comparison on ``split`` ("test", "val" or "test+val") used the images that chose the models."""
    return "val" in split.split("+")


def split_label(split: str) -> str:
    """The split's name, marked selection-biased when it includes the validation images."""
    return f"{split} ({SELECTION_BIASED})" if selection_biased(split) else split


def paired_table(rows_in: Sequence[tuple[str, str, str, str, Paired]], *, key: str = "paired_dice") -> Table:
    """Student minus Teacher per-image Dice: rows of (scope, seed(s), split, student, result).

    ``split`` is "test", "val" (no test split: the row is marked selection-biased) or "test+val".
    """
    rows: list[list[Cell]] = []
    for scope, seeds, split, student, res in rows_in:
        rows.append(
            [
                scope,
                seeds,
                split_label(split),
                student,
                res.n,
                res.mean_diff,
                Interval(res.ci_low, res.ci_high),
                fmt_p(res.p_value, res.note),
                f"{res.wins} / {res.losses}",
            ]
        )
    notes = [
        "Pairs are the same images scored by Teacher (gen0) and Student; test split when present, else "
        "validation. Images (n) counts independent images: in the all-seeds rows each image's difference is "
        "first averaged over the seeds that scored it, and Overall averages the architectures' per-image "
        "means, so repeated seeds never count as extra images. Bootstrap: 5000 seeded resamples of images; "
        "Wilcoxon signed-rank over images, two-sided; better / worse counts images."
    ]
    if any(selection_biased(split) for _, _, split, _, _ in rows_in):
        notes.append(SELECTION_BIAS_NOTE)
    return Table(
        key=key,
        title="Teacher versus Student: paired per-image Dice difference (Student − Teacher)",
        columns=[
            "Scope",
            "Seed",
            "Split",
            "Student",
            "Images (n)",
            "Mean ΔDice",
            "95% bootstrap CI",
            "Wilcoxon p",
            "Better / worse",
        ],
        rows=rows,
        notes=notes,
    )
