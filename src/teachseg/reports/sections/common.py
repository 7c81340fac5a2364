"""Helpers the section builders share: per-image rows ranked and grouped, and how runs are named."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from teachseg.reports.runs import ExperimentEntry, TrainRun
from teachseg.reports.stats import mean_per_image
from teachseg.reports.tables.study import arch_label

N_EXAMPLES = 3  # images per example figure (fixed, best, worst)
N_WORST = 10  # rows of the worst-cases table


def finite(v: Any) -> bool:
    """Whether ``v`` is a finite number (booleans are not numbers here)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def threshold(run: TrainRun) -> float:
    """The run's binarisation threshold from its config (0.5 when missing or invalid)."""
    t = ((run.config or {}).get("train") or {}).get("threshold")
    return float(t) if isinstance(t, (int, float)) and finite(t) and 0 < t < 1 else 0.5


def by_dice(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-image rows with a finite Dice, worst first (ties by image id)."""
    return sorted((r for r in rows if finite(r.get("dice"))), key=lambda r: (r["dice"], str(r["id"])))


def class_of(row: dict[str, Any]) -> str:
    """The image's class (``all`` when the dataset has none)."""
    return str(row.get("class") or "all")


def dice_by_class(rows: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Finite per-image Dice grouped by class."""
    out: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if finite(r.get("dice")):
            out[class_of(r)].append(float(r["dice"]))
    return dict(out)


def dice_by_image(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Image id -> finite Dice."""
    return {str(r["id"]): float(r["dice"]) for r in rows if r.get("id") is not None and finite(r.get("dice"))}


def class_series(per_seed: list[dict[str, float]], classes: dict[str, str]) -> dict[str, list[float]]:
    """Per-class Dice with each image averaged over the seeds that scored it (the image is the unit)."""
    out: dict[str, list[float]] = defaultdict(list)
    for image_id, dice in mean_per_image(per_seed).items():
        out[classes.get(image_id, "all")].append(dice)
    return dict(out)


def common_split(a: TrainRun, b: TrainRun) -> str | None:
    """The split both runs scored per image: test when both have it, else validation."""
    for s in ("test", "val"):
        if a.per_image.get(s) and b.per_image.get(s):
            return s
    return None


def joined_split(splits: set[str]) -> str:
    """``test``, ``val`` or ``test+val``: the splits a pooled comparison used ("" for none)."""
    return "+".join(s for s in ("test", "val") if s in splits)


def entry_name(e: ExperimentEntry) -> str:
    """How a run of a study is named in tables and titles (``LinkNet seed 42``)."""
    return f"{arch_label(e.arch)} seed {e.seed}" if e.seed is not None else e.dir
