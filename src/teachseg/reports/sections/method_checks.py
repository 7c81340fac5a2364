"""How each arm of a methods comparison trained, and the checks that its conditions were really equal.

The table behind the Methods section's figures: per method and label fraction, the optimiser steps of every
model the arm trained, the best validation's step, why training stopped, the augmentation used, and of how
many models the arm's validation figure is the best. The checks name what would make a comparison unfair:
a baseline trained for fixed epochs or stopped by its step cap (not converged), a baseline whose cap was
below another arm's steps, a model best in the last tenth of its training (still rising), and runs of one
dataset with different strong augmentations.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from teachseg.reports.sections.method_cells import Cell
from teachseg.reports.tables.model import Table

SUPERVISED = "supervised"
#: a best validation past this share of the epochs (or steps) trained suggests validation Dice was still rising
LATE_BEST = 0.9

Cells = dict[tuple[str, float], Cell]


def _baseline_first(cells: Cells) -> list[tuple[tuple[str, float], Cell]]:
    return sorted(cells.items(), key=lambda kv: (kv[0][0] != SUPERVISED, kv[0][1], kv[0][0]))


def late_seeds(cell: Cell) -> list[str]:
    """The seeds whose final model was best past :data:`LATE_BEST` of its training, as ``seed 21: 40 of 40``
    (epochs) or ``seed 21: step 1900 of 2000`` (where the run recorded its steps)."""
    late = []
    for seed in sorted(set(cell.best_epochs) | set(cell.best_steps)):
        if seed in cell.best_steps:
            b, n = cell.best_steps[seed]
            if b > LATE_BEST * n:
                late.append(f"seed {seed}: step {b} of {n}")
        else:
            b, n = cell.best_epochs[seed]
            if b > LATE_BEST * n:
                late.append(f"seed {seed}: {b} of {n}")
    return late


def still_rising(cells: Cells) -> str:
    """An alert naming the cells whose final model was best late in training (past :data:`LATE_BEST` of its
    epochs or steps, in any seed), supervised first; empty when none was."""
    late = []
    by_steps = False
    for (method, frac), c in _baseline_first(cells):
        seeds = late_seeds(c)
        by_steps = by_steps or any("step" in s for s in seeds)
        if seeds:
            late.append(f"{method} at {frac:g} ({', '.join(seeds)})")
    if not late:
        return ""
    return (
        f"Best validation {'' if by_steps else 'epoch '}in the last tenth of training, so validation Dice may "
        "still have been rising: "
        + "; ".join(late)
        + ". Raise train.epochs (train.stop: epochs) or train.converge.max_steps (train.stop: converge; a "
        "converged run stops well after its best validation). A supervised baseline still rising understates "
        "what the labelled images alone reach and inflates every gain over it. teacher_student's Students, and "
        "the online methods with selftrain.online.epoch_over: unlabelled, also take more optimiser steps per "
        "epoch than supervised: the same runs with selftrain.online.unlabelled_weight: 0 keep those steps "
        "without the unlabelled images' signal, and with selftrain.pseudo_weight: 0 the steps of every batch "
        "that holds a labelled image (a batch of pseudo-labelled images alone takes none)."
    )


def baseline_not_converged(cells: Cells) -> str:
    """An alert when a supervised cell (the baseline of every gain) trained for fixed epochs or hit its step
    cap in some seed; empty otherwise."""
    fixed, capped = [], []
    for (method, frac), c in sorted(cells.items()):
        if method != SUPERVISED:
            continue
        if any(rule == "epochs" for rule in c.rule.values()):
            fixed.append(f"{frac:g}")
        seeds = [str(k) for k, by in sorted(c.stopped_by.items()) if by == "max_steps"]
        if seeds:
            capped.append(f"{frac:g} (seed {', '.join(seeds)})")
    parts = []
    if fixed:
        parts.append(
            f"The supervised baseline at {', '.join(fixed)} trained for a fixed number of epochs, not until "
            "validation Dice stopped improving: gains over it may be gains over an unfinished run. Rerun it "
            "with train.stop: converge (the default)."
        )
    if capped:
        parts.append(
            f"The supervised baseline at {'; '.join(capped)} stopped at its step cap before validation Dice "
            "stopped improving. Raise train.converge.max_steps."
        )
    return " ".join(parts)


def cap_below_arms(cells: Cells) -> str:
    """An alert when a supervised run's step cap was below the steps another arm of its label fraction and
    seed took (the baseline could not have trained as long); empty otherwise."""
    short = []
    for (method, frac), c in _baseline_first(cells):
        sup = cells.get((SUPERVISED, frac))
        if method == SUPERVISED or sup is None:
            continue
        for seed, steps in sorted(c.steps.items()):
            cap = sup.max_steps.get(seed)
            if cap is not None and steps > cap:
                short.append(
                    f"{method} at {frac:g} seed {seed} took {steps} steps, supervised's cap was {cap}"
                )
    if not short:
        return ""
    return (
        "The supervised baseline's step cap was below another arm's optimiser steps: "
        + "; ".join(short)
        + ". Raise train.converge.max_steps (teachseg experiment sets the supervised cap to the longest arm's "
        "possible steps)."
    )


def modality_differs(cells: Cells) -> str:
    """An alert when the runs of one comparison recorded different modalities (strong augmentations)."""
    found: dict[str, list[str]] = {}
    for (method, frac), c in _baseline_first(cells):
        for seed, modality in sorted(c.modality.items()):
            found.setdefault(modality, []).append(f"{method} at {frac:g} seed {seed}")
    if len(found) < 2:
        return ""
    listed = "; ".join(
        f"{m}: {', '.join(runs[:4])}{' ...' if len(runs) > 4 else ''}" for m, runs in found.items()
    )
    return (
        f"The runs recorded different modalities, so their strong augmentation differed ({listed}). The "
        "modality is decided once per dataset from all its images; runs made before that looked at a few "
        "images of each split. Retrain the runs of the minority modality (--overwrite after deleting them)."
    )


def _mean_int(values: dict[int, int]) -> int | None:
    return int(round(float(np.mean(list(values.values()))))) if values else None


def _range(values: dict[int, int]) -> str | None:
    if not values:
        return None
    lo, hi = min(values.values()), max(values.values())
    mean = _mean_int(values)
    return f"{mean}" if lo == hi else f"{mean} ({lo}–{hi})"


def _joined(values: dict[int, Any]) -> str | None:
    found = list(dict.fromkeys(str(v) for _, v in sorted(values.items())))
    return " | ".join(found) if found else None


def training_table(cells: Cells, methods: list[str], fractions: list[float]) -> Table:
    """Per method and label fraction: steps, best step, stopping, augmentation, models compared, still rising."""
    table = Table(
        "methods_training",
        "How each arm trained (mean over seeds, range in brackets)",
        [
            "Label fraction",
            "Method",
            "Stop",
            "Optimiser steps",
            "Best step",
            "Stopped by",
            "Augmentation",
            "Models compared on validation",
            "Still rising",
        ],
    )
    table.notes.append(
        "Optimiser steps: every model the arm trained (teacher_student: the Teacher and every Student). Best "
        "step: the final model's best validation. Models compared on validation: how many models the arm's "
        "validation Dice is the best of (1 + Students for teacher_student), which is why methods are chosen "
        "on the selection images when there are some. Still rising: best in the last tenth of training."
    )
    for frac in fractions:
        for method in methods:
            c = cells.get((method, frac))
            if c is None:
                continue
            best_steps = {k: b for k, (b, _) in c.best_steps.items()}
            table.rows.append(
                [
                    f"{frac:g}",
                    method,
                    _joined(c.rule),
                    _range(c.steps),
                    _range(best_steps),
                    _joined(c.stopped_by),
                    _joined(c.augmentation),
                    _range(c.models),
                    "; ".join(late_seeds(c)) or "no",
                ]
            )
    return table
