"""The Methods section: which way of using unlabelled images won, at each label fraction, and by how much.

Built from an experiment whose grid has ``experiment.methods`` (and usually ``experiment.label_fractions``).
Each run's model is its final one (the study's loop: the last accepted Student, else the Teacher; the other
methods train one model). Per method and label fraction: test Dice mean +/- SD over seeds with a t-based 95%
interval, the validation Dice that chooses between methods, and the share of the supervised-to-ceiling gap
closed (the ceiling is ``supervised`` at label fraction 1). The best method per label fraction is chosen on
*validation* Dice; its paired per-image comparison with ``supervised`` averages each image over seeds first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from teachseg.reports.document import Figure, Section
from teachseg.reports.readers import Warnings
from teachseg.reports.runs import ExperimentEntry, TrainRun
from teachseg.reports.sections.common import dice_by_image
from teachseg.reports.stats import mean_per_image, paired_test, summarize
from teachseg.reports.tables.model import Interval, PlusMinus, Table, fmt_p

SUPERVISED = "supervised"
ORDER = ("supervised", "pretrain", "teacher_student", "mean_teacher", "fixmatch")
INTRO = (
    "Every method ran on the same split per seed, architecture, augmentation, loss, metric and epochs. "
    "Test Dice is the mean over seeds (± SD, 95% t-interval over seeds); the best method at each label "
    "fraction is chosen on validation Dice, never on test. Gap closed: (method − supervised) / "
    "(ceiling − supervised) per seed, against the ceiling of the same seed (each seed has its own split), then "
    "averaged over seeds; the ceiling is supervised training with every mask. Pretraining: the wall time of the "
    "in-domain pretraining of the encoder that an arm started from, mean over seeds, on the device it ran on (one "
    "pretraining per seed serves every arm and label fraction that uses it)."
)


@dataclass
class Cell:
    """The runs of one method at one label fraction (one per seed)."""

    method: str
    fraction: float
    test: dict[int, float] = field(default_factory=dict)
    val: dict[int, float] = field(default_factory=dict)
    per_image: dict[int, dict[str, float]] = field(default_factory=dict)
    split: str = "test"
    #: seed -> (best validation epoch, epochs trained) of the final model, where the run says
    best_epochs: dict[int, tuple[int, int]] = field(default_factory=dict)
    #: seed -> seconds of the pretraining its encoder started from (``pretrain`` in its summary), and the
    #: kinds of device those ran on (cpu, gpu)
    pretrain_seconds: dict[int, float] = field(default_factory=dict)
    pretrain_devices: set[str] = field(default_factory=set)

    def pretrain_cost(self) -> str:
        """``"12.5 GPU min"``: mean pretraining minutes over seeds ("" when the arm did not pretrain)."""
        if not self.pretrain_seconds:
            return ""
        minutes = float(np.mean(list(self.pretrain_seconds.values()))) / 60.0
        return f"{minutes:.1f} {'/'.join(sorted(self.pretrain_devices)).upper() or 'CPU'} min"


def final_model(entry: ExperimentEntry) -> TrainRun | None:
    """The run's final model: the generation its summary or lineage names, else the Teacher."""
    run = entry.run
    if run is None:
        return None
    final = run.final_generation()
    return run.generations.get(final if final is not None else 0) or run.teacher


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def collect(entries: list[ExperimentEntry], warn: Warnings) -> dict[tuple[str, float], Cell]:
    """Test and validation Dice and per-image scores of every (method, label fraction), per seed."""
    cells: dict[tuple[str, float], Cell] = {}
    for i, e in enumerate(entries):
        if e.method is None:
            continue
        model = final_model(e)
        if model is None:
            continue
        frac = e.label_fraction if e.label_fraction is not None else _config_fraction(e)
        cell = cells.setdefault((e.method, frac), Cell(e.method, frac))
        seed = e.seed if e.seed is not None else i
        test, val = _number(model.get("test_dice")), _number(model.get("val_dice"))
        if test is not None:
            cell.test[seed] = test
        if val is not None:
            cell.val[seed] = val
        best_epoch, epochs = model.get("best_epoch"), model.get("epochs")
        if isinstance(best_epoch, int) and isinstance(epochs, int) and epochs > 0:
            cell.best_epochs[seed] = (best_epoch, epochs)
        pretrain = model.get("pretrain")
        if isinstance(pretrain, dict) and _number(pretrain.get("seconds")) is not None:
            cell.pretrain_seconds[seed] = float(pretrain["seconds"])
            cell.pretrain_devices.add(str(pretrain.get("device_kind") or "cpu"))
        split = model.eval_split
        if split is not None:
            cell.per_image[seed] = dice_by_image(model.per_image[split])
            if split != "test":
                cell.split = split
        if test is None:
            warn.add(
                model.path,
                f"no test Dice: {e.method} at label fraction {frac:g} is left out of the test columns",
            )
    return cells


def _config_fraction(entry: ExperimentEntry) -> float:
    """The run's ``data.label_fraction`` (from its config.yaml), when the grid did not vary it."""
    config = entry.run.config if entry.run is not None else None
    value = ((config or {}).get("data") or {}).get("label_fraction", 1.0)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 1.0


def _methods(cells: dict[tuple[str, float], Cell]) -> list[str]:
    found = {m for m, _ in cells}
    return [m for m in ORDER if m in found] + sorted(found - set(ORDER))


def _mean(values: dict[int, float]) -> float:
    return float(np.mean(list(values.values()))) if values else math.nan


def gap_closed_per_seed(cell: Cell, supervised: Cell, ceiling: Cell) -> dict[int, float]:
    """Per seed, (method - supervised) / (ceiling - supervised), each seed against its own ceiling.

    Each seed has its own split, so its test images differ: a seed is compared only with the supervised run and
    the ceiling of the same seed (seeds missing from either, or where the ceiling is not above supervised, are left
    out).
    """
    return {
        k: (cell.test[k] - supervised.test[k]) / (ceiling.test[k] - supervised.test[k])
        for k in sorted(cell.test)
        if k in supervised.test and k in ceiling.test and ceiling.test[k] - supervised.test[k] > 1e-9
    }


def gap_closed(cell: Cell, supervised: Cell, ceiling: Cell) -> float:
    """Mean over seeds of :func:`gap_closed_per_seed`; NaN when no seed remains."""
    shares = gap_closed_per_seed(cell, supervised, ceiling)
    return float(np.mean(list(shares.values()))) if shares else math.nan


#: a best validation epoch past this share of the epochs trained suggests validation Dice was still rising
LATE_BEST = 0.9


def still_rising(cells: dict[tuple[str, float], Cell]) -> str:
    """An alert naming the cells whose final model was best late in training (past :data:`LATE_BEST` of its
    epochs, in any seed), supervised first; empty when none was."""
    late = []
    for (method, frac), c in sorted(
        cells.items(), key=lambda kv: (kv[0][0] != SUPERVISED, kv[0][1], kv[0][0])
    ):
        seeds = [f"seed {k}: {b} of {n}" for k, (b, n) in sorted(c.best_epochs.items()) if b > LATE_BEST * n]
        if seeds:
            late.append(f"{method} at {frac:g} ({', '.join(seeds)})")
    if not late:
        return ""
    return (
        "Best validation epoch in the last tenth of training, so validation Dice may still have been rising: "
        + "; ".join(late)
        + ". Raise train.epochs. A supervised baseline still rising understates what the labelled images alone "
        "reach and inflates every gain over it. teacher_student's Students, and the online methods with "
        "selftrain.online.epoch_over: unlabelled, also take more optimiser steps per epoch than supervised: "
        "the same runs with selftrain.pseudo_weight: 0 or selftrain.online.unlabelled_weight: 0 keep those "
        "steps without the unlabelled images' signal."
    )


def best_on_validation(cells: dict[tuple[str, float], Cell], fraction: float) -> str | None:
    """The non-supervised method with the highest mean validation Dice at ``fraction``."""
    options = [(c.method, _mean(c.val)) for (m, f), c in cells.items() if f == fraction and m != SUPERVISED]
    options = [(m, v) for m, v in options if not math.isnan(v)]
    return max(options, key=lambda mv: mv[1])[0] if options else None


def methods_section(entries: list[ExperimentEntry], warn: Warnings) -> Section:
    """Table of every method and label fraction, the winner's paired statistics, and the Dice-vs-labels figure."""
    sec = Section("methods", "Methods", INTRO)
    cells = collect(entries, warn)
    if not cells:
        return sec
    ceiling_cell = cells.get((SUPERVISED, 1.0))
    ceiling = _mean(ceiling_cell.test) if ceiling_cell else math.nan
    fractions = sorted({f for _, f in cells})
    table = Table(
        "methods",
        "Test Dice per method and label fraction",
        [
            "Label fraction",
            "Method",
            "Seeds",
            "Test Dice",
            "95% CI",
            "Val Dice",
            "Gap closed",
            "Chosen",
            "Pretraining",
        ],
    )
    for frac in fractions:
        sup = cells.get((SUPERVISED, frac))
        best = best_on_validation(cells, frac)
        for method in _methods(cells):
            c = cells.get((method, frac))
            if c is None:
                continue
            s = summarize(c.test.values())
            gap = None
            if sup is not None and ceiling_cell is not None and method != SUPERVISED and frac < 1.0:
                closed = gap_closed(c, sup, ceiling_cell)
                gap = None if math.isnan(closed) else closed
            table.rows.append(
                [
                    f"{frac:g}",
                    method + (" (ceiling)" if method == SUPERVISED and frac == 1.0 else ""),
                    s.n,
                    PlusMinus(s.mean, s.sd) if s.n > 1 else (s.mean if s.n else None),
                    Interval(s.ci_low, s.ci_high) if s.n > 1 else None,
                    _mean(c.val) if c.val else None,
                    gap,
                    "yes" if method == best else "",
                    c.pretrain_cost(),
                ]
            )
    alerts = []
    if any(c.split != "test" for c in cells.values()):
        alerts.append(
            "Some runs have no test split: their per-image comparison falls back to the validation images "
            "that also chose the method (selection-biased). Set data.test_fraction (e.g. 0.2)."
        )
    alerts.append(still_rising(cells))
    sec.alert = " ".join(a for a in alerts if a)
    sec.blocks.append(table)
    sec.blocks.append(_paired_table(cells, fractions))
    sec.blocks.append(_figure(cells, fractions, ceiling))
    return sec


def _paired_table(cells: dict[tuple[str, float], Cell], fractions: list[float]) -> Table:
    table = Table(
        "methods_paired",
        "Validation-chosen method minus supervised, per image (averaged over seeds)",
        ["Label fraction", "Method", "Images (n)", "Mean diff", "95% CI", "p (Wilcoxon)", "Wins / losses"],
    )
    for frac in fractions:
        best = best_on_validation(cells, frac)
        sup = cells.get((SUPERVISED, frac))
        if best is None or sup is None:
            continue
        c = cells[(best, frac)]
        per_seed = []
        for seed, scores in c.per_image.items():
            base = sup.per_image.get(seed)
            if base:
                per_seed.append({i: scores[i] - base[i] for i in scores if i in base})
        p = paired_test(mean_per_image(per_seed))
        table.rows.append(
            [
                f"{frac:g}",
                best,
                p.n,
                p.mean_diff,
                Interval(p.ci_low, p.ci_high),
                fmt_p(p.p_value, p.note),
                f"{p.wins} / {p.losses}",
            ]
        )
    return table


def _figure(cells: dict[tuple[str, float], Cell], fractions: list[float], ceiling: float) -> Figure:
    from teachseg.reports.figures import dice_vs_labels_figure

    series: dict[str, list[tuple[float, float, float]]] = {}
    for method in _methods(cells):
        for frac in fractions:
            c = cells.get((method, frac))
            if c is not None and c.test:
                s = summarize(c.test.values())
                series.setdefault(method, []).append((frac, s.mean, 0.0 if math.isnan(s.sd) else s.sd))
    return Figure(
        "methods_dice_vs_labels",
        "Test Dice against label fraction",
        "One line per method; error bars: SD over seeds; dashed: supervised training with every mask.",
        dice_vs_labels_figure(series, fractions, ceiling),
    )
