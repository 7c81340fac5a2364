"""The runs of a methods comparison, one :class:`Cell` per (method, label fraction), read from run folders.

A cell holds per seed what the Methods section reports and checks: the scores of the run's final model (test,
validation, and selection, the images that choose between methods), and how the run trained: its optimiser
steps, the best validation's step, why it stopped (``train.stop``), the augmentation it used, the dataset
modality it recorded, and of how many models its validation figure is the best (1 + Students for
teacher_student).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from teachseg.reports.readers import Warnings
from teachseg.reports.runs import ExperimentEntry, SelfTrainRun, TrainRun
from teachseg.reports.sections.common import dice_by_image


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
    #: seed -> Dice on the selection images (``data.select_fraction``), which no decision in the run read
    select: dict[int, float] = field(default_factory=dict)
    #: seed -> (best validation step, optimiser steps) of the final model, where the run says
    best_steps: dict[int, tuple[int, int]] = field(default_factory=dict)
    #: seed -> optimiser steps of every model the run trained (Teacher and Students for teacher_student)
    steps: dict[int, int] = field(default_factory=dict)
    #: seed -> how many models the run's validation figure is the best of
    models: dict[int, int] = field(default_factory=dict)
    #: seed -> the stopping rule of the final model: ``converge`` or ``epochs``
    rule: dict[int, str] = field(default_factory=dict)
    #: seed -> why the final model stopped: ``patience``, ``max_steps``, ``epochs``
    stopped_by: dict[int, str] = field(default_factory=dict)
    #: seed -> the step cap of the final model (``train.converge.max_steps``)
    max_steps: dict[int, int] = field(default_factory=dict)
    #: seed -> the augmentation of the models the run trained ("weak / weak+noisy-student")
    augmentation: dict[int, str] = field(default_factory=dict)
    #: seed -> the dataset modality the run recorded (it decides the strong augmentation)
    modality: dict[int, str] = field(default_factory=dict)
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


def number(v: Any) -> float | None:
    """``v`` as a float when it is a finite number (booleans are not), else None."""
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def whole(v: Any) -> int | None:
    """``v`` as an int when it is a whole number, else None."""
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def config_fraction(entry: ExperimentEntry) -> float:
    """The run's ``data.label_fraction`` (from its config.yaml), when the grid did not vary it."""
    config = entry.run.config if entry.run is not None else None
    value = ((config or {}).get("data") or {}).get("label_fraction", 1.0)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 1.0


def stop_rule(model: TrainRun, run: SelfTrainRun) -> tuple[str | None, dict[str, Any]]:
    """The final model's stopping rule and its ``stop`` record: from its summary, else the run's config
    (a config without ``train.stop`` predates it: fixed epochs); None when neither says."""
    record = model.get("stop")
    if isinstance(record, dict) and record.get("rule"):
        return str(record["rule"]), record
    train = (run.config or {}).get("train")
    if isinstance(train, dict):
        return str(train.get("stop") or "epochs"), {}
    return None, {}


def _trained(run: SelfTrainRun) -> list[TrainRun]:
    """The models the run trained itself, Teacher first (an external Teacher was trained elsewhere)."""
    models = [g for _, g in sorted(run.generations.items())]
    if models and models[0].get("external_model") is not None:
        models = models[1:]
    return models


def total_steps(run: SelfTrainRun) -> int | None:
    """Optimiser steps of every model the run trained: its summary's, else the sum over its generations
    (None when one of them does not say)."""
    recorded = whole(getattr(run.summary, "total_steps", None) if run.summary is not None else None)
    if recorded is not None:
        return recorded
    counts = [whole(g.get("steps")) for g in _trained(run)]
    return sum(c for c in counts if c is not None) if counts and None not in counts else None


def models_compared(run: SelfTrainRun, method: str) -> int:
    """How many models the run's validation figure is the best of: its summary's, else 1 + its Students."""
    recorded = whole(getattr(run.summary, "models_compared", None) if run.summary is not None else None)
    if recorded is not None:
        return recorded
    if method != "teacher_student":
        return 1
    students = run.lineage.students() if run.lineage is not None else []
    return 1 + (len(students) or len([g for g in run.generations if g > 0]))


def augmentations(run: SelfTrainRun) -> str | None:
    """The augmentations of the models the run trained, in order, without repeats (``weak / weak+strong:he``)."""
    found: list[str] = []
    for g in _trained(run):
        aug = g.get("augmentation")
        if aug is None and g.get("strong_augmentation"):  # online runs before `augmentation` was recorded
            aug = f"weak+strong:{g.get('strong_augmentation')}"
        if isinstance(aug, str) and aug not in found:
            found.append(aug)
    return " / ".join(found) if found else None


def run_modality(run: SelfTrainRun) -> str | None:
    """The modality the run recorded: its summary's, its split's, else its online model's strong augmentation."""
    recorded = getattr(run.summary, "modality", None) if run.summary is not None else None
    if isinstance(recorded, str):
        return recorded
    if isinstance(run.split, dict) and isinstance(run.split.get("modality"), str):
        return str(run.split["modality"])
    for g in _trained(run):
        strong = g.get("strong_augmentation")
        if isinstance(strong, str):
            return strong
    return None


def _record_training(cell: Cell, seed: int, model: TrainRun, run: SelfTrainRun, method: str) -> None:
    best_epoch, epochs = model.get("best_epoch"), model.get("epochs")
    if isinstance(best_epoch, int) and isinstance(epochs, int) and epochs > 0:
        cell.best_epochs[seed] = (best_epoch, epochs)
    pretrain = model.get("pretrain")
    if isinstance(pretrain, dict) and number(pretrain.get("seconds")) is not None:
        cell.pretrain_seconds[seed] = float(pretrain["seconds"])
        cell.pretrain_devices.add(str(pretrain.get("device_kind") or "cpu"))
    best_step, steps = whole(model.get("best_step")), whole(model.get("steps"))
    if best_step is not None and steps:
        cell.best_steps[seed] = (best_step, steps)
    total = total_steps(run)
    if total is not None:
        cell.steps[seed] = total
    cell.models[seed] = models_compared(run, method)
    rule, record = stop_rule(model, run)
    if rule is not None:
        cell.rule[seed] = rule
    if isinstance(record.get("stopped_by"), str):
        cell.stopped_by[seed] = record["stopped_by"]
    if whole(record.get("max_steps")) is not None:
        cell.max_steps[seed] = record["max_steps"]
    aug = augmentations(run)
    if aug is not None:
        cell.augmentation[seed] = aug
    modality = run_modality(run)
    if modality is not None:
        cell.modality[seed] = modality


def collect(entries: list[ExperimentEntry], warn: Warnings) -> dict[tuple[str, float], Cell]:
    """Scores and training records of every (method, label fraction), per seed."""
    cells: dict[tuple[str, float], Cell] = {}
    for i, e in enumerate(entries):
        if e.method is None or e.run is None:
            continue
        model = final_model(e)
        if model is None:
            continue
        frac = e.label_fraction if e.label_fraction is not None else config_fraction(e)
        cell = cells.setdefault((e.method, frac), Cell(e.method, frac))
        seed = e.seed if e.seed is not None else i
        test, val = number(model.get("test_dice")), number(model.get("val_dice"))
        select = number(model.get("select_dice"))
        if test is not None:
            cell.test[seed] = test
        if val is not None:
            cell.val[seed] = val
        if select is not None:
            cell.select[seed] = select
        _record_training(cell, seed, model, e.run, e.method)
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
