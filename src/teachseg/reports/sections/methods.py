"""The Methods section: which way of using unlabelled images won, at each label fraction, and by how much.

Built from an experiment whose grid has ``experiment.methods`` (and usually ``experiment.label_fractions``).
Each run's model is its final one (the study's loop: the last accepted Student, else the Teacher; the other
methods train one model). Per method and label fraction: test Dice mean +/- SD over seeds with a t-based 95%
interval, the validation and selection Dice, and the share of the supervised-to-ceiling gap closed (the
ceiling is ``supervised`` at label fraction 1). Every gain is measured against ``supervised`` at the same
label fraction, the baseline, trained until validation Dice stopped improving (``train.stop: converge``; a
baseline trained for fixed epochs is labelled so and named in the alert).

The best method per label fraction is chosen on the *selection* images (``data.select_fraction``), which no
decision inside any run has seen, so every method gets the same single look at them. Without a selection
split it falls back to validation Dice, labelled selection-biased: teacher_student's validation figure is
the best of its Teacher and every Student on those images, the others' of one model. The chosen method's
paired per-image comparison with ``supervised`` averages each image over seeds first. A second table
(:mod:`teachseg.reports.sections.method_checks`) shows how each arm trained.
"""

from __future__ import annotations

import math

import numpy as np

from teachseg.reports.document import Figure, Section
from teachseg.reports.readers import Warnings
from teachseg.reports.runs import ExperimentEntry
from teachseg.reports.sections.method_cells import Cell, collect, final_model
from teachseg.reports.sections.method_checks import (
    LATE_BEST,
    baseline_not_converged,
    cap_below_arms,
    modality_differs,
    still_rising,
    training_table,
)
from teachseg.reports.stats import mean_per_image, paired_test, summarize
from teachseg.reports.tables.model import Interval, PlusMinus, Table, fmt_p

# Cell, collect, final_model, still_rising and LATE_BEST are read from here by the benchmarks
__all__ = [
    "LATE_BEST",
    "Cell",
    "best_on_validation",
    "choose",
    "collect",
    "final_model",
    "gap_closed",
    "gap_closed_per_seed",
    "methods_section",
    "still_rising",
]

SUPERVISED = "supervised"
ORDER = ("supervised", "pretrain", "teacher_student", "mean_teacher", "fixmatch")
INTRO = (
    "Every method ran on the same split per seed, architecture, loss and metric; every model trained until "
    "validation Dice stopped improving (train.stop: converge) unless labelled otherwise, and the supervised "
    "baseline could train at least as many optimiser steps as any other arm. Test Dice is the mean over "
    "seeds (± SD, 95% t-interval over seeds). The best method at each label fraction is chosen on the "
    "selection images, which no decision inside a run has seen (else on validation Dice, labelled "
    "selection-biased), never on test. Gap closed: (method − supervised) / (ceiling − supervised) per seed, "
    "against the ceiling of the same seed (each seed has its own split), then averaged over seeds; the "
    "ceiling is supervised training with every mask. Pretraining: the wall time of the in-domain pretraining of "
    "the encoder that an arm started from, mean over seeds, on the device it ran on (one pretraining per seed "
    "serves every arm and label fraction that uses it)."
)


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


def best_on_validation(cells: dict[tuple[str, float], Cell], fraction: float) -> str | None:
    """The non-supervised method with the highest mean validation Dice at ``fraction``."""
    options = [(c.method, _mean(c.val)) for (m, f), c in cells.items() if f == fraction and m != SUPERVISED]
    options = [(m, v) for m, v in options if not math.isnan(v)]
    return max(options, key=lambda mv: mv[1])[0] if options else None


def choose(cells: dict[tuple[str, float], Cell], fraction: float) -> tuple[str | None, str]:
    """The non-supervised method to report at ``fraction`` and what chose it: ``selection`` (the highest mean
    selection Dice, when every candidate has selection scores) or ``validation`` (selection-biased)."""
    candidates = [c for (m, f), c in cells.items() if f == fraction and m != SUPERVISED]
    if candidates and all(c.select for c in candidates):
        options = [(c.method, _mean(c.select)) for c in candidates]
        options = [(m, v) for m, v in options if not math.isnan(v)]
        if options:
            return max(options, key=lambda mv: mv[1])[0], "selection"
    return best_on_validation(cells, fraction), "validation"


def _baseline_label(cell: Cell) -> str:
    label = SUPERVISED + (" (ceiling)" if cell.fraction == 1.0 else "")
    if any(rule == "epochs" for rule in cell.rule.values()):
        label += " (fixed epochs)"
    return label


def methods_section(entries: list[ExperimentEntry], warn: Warnings) -> Section:
    """Table of every method and label fraction, how each trained, the chosen method's paired statistics, and
    the Dice-vs-labels figure."""
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
            "Select Dice",
            "Gap closed",
            "Chosen",
            "Pretraining",
        ],
    )
    bases = set()
    for frac in fractions:
        sup = cells.get((SUPERVISED, frac))
        best, basis = choose(cells, frac)
        if best is not None:
            bases.add(basis)
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
                    _baseline_label(c) if method == SUPERVISED else method,
                    s.n,
                    PlusMinus(s.mean, s.sd) if s.n > 1 else (s.mean if s.n else None),
                    Interval(s.ci_low, s.ci_high) if s.n > 1 else None,
                    _mean(c.val) if c.val else None,
                    _mean(c.select) if c.select else None,
                    gap,
                    ("yes" if basis == "selection" else "yes (on validation)") if method == best else "",
                    c.pretrain_cost(),
                ]
            )
    alerts = []
    if "validation" in bases:
        alerts.append(
            "No selection split (data.select_fraction is 0, or a method's runs lack selection scores): the "
            "method is chosen on validation Dice, selection-biased, since teacher_student's validation figure "
            "is the best of its Teacher and every Student on the same images. Set data.select_fraction "
            "(e.g. 0.1)."
        )
    if any(c.split != "test" for c in cells.values()):
        alerts.append(
            "Some runs have no test split: their per-image comparison falls back to the validation images "
            "that also chose the method (selection-biased). Set data.test_fraction (e.g. 0.2)."
        )
    alerts += [baseline_not_converged(cells), cap_below_arms(cells), modality_differs(cells)]
    alerts.append(still_rising(cells))
    sec.alert = " ".join(a for a in alerts if a)
    sec.blocks.append(table)
    sec.blocks.append(training_table(cells, _methods(cells), fractions))
    sec.blocks.append(_paired_table(cells, fractions))
    sec.blocks.append(_figure(cells, fractions, ceiling))
    return sec


def _paired_table(cells: dict[tuple[str, float], Cell], fractions: list[float]) -> Table:
    table = Table(
        "methods_paired",
        "Chosen method minus supervised, per image (averaged over seeds)",
        [
            "Label fraction",
            "Method",
            "Chosen on",
            "Images (n)",
            "Mean diff",
            "95% CI",
            "p (Wilcoxon)",
            "Wins / losses",
        ],
    )
    for frac in fractions:
        best, basis = choose(cells, frac)
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
                basis if basis == "selection" else "validation (selection-biased)",
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
