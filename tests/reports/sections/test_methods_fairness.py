"""The Methods section on equal terms (#32): the method is chosen on the selection images, every arm shows its
optimiser steps, best step, augmentation and looks at validation, and the report names an unconverged or
capped baseline, a cap below another arm's steps, a model still rising, and runs with another modality."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from teachseg.reports.readers import Warnings
from teachseg.reports.runs import ExperimentEntry, SelfTrainRun, TrainRun
from teachseg.reports.sections.methods import choose, collect, methods_section
from teachseg.runfiles import SelftrainSummary, TrainSummary

SEEDS = (21, 42)


def _entry(
    method: str,
    frac: float,
    seed: int,
    *,
    test: float,
    val: float,
    select: float | None,
    steps: int = 2000,
    best_step: int = 1200,
    stopped_by: str = "patience",
    rule: str = "converge",
    max_steps: int = 20000,
    models: int = 1,
    total: int | None = None,
    augmentation: str = "weak",
    modality: str = "ultrasound",
) -> ExperimentEntry:
    stop: dict[str, Any] = {"rule": rule, "stopped_by": stopped_by if rule == "converge" else "epochs"}
    if rule == "converge":
        stop["max_steps"] = max_steps
    gen0 = TrainRun(
        path=Path(f"/x/{method}_{frac}_{seed}/gen0"),
        summary=TrainSummary(
            arch="linknet",
            encoder="resnet34",
            test_dice=test,
            val_dice=val,
            select_dice=select,
            steps=steps,
            best_step=best_step,
            best_epoch=10,
            epochs=20,
            stop=stop,
            augmentation=augmentation,
        ),
        per_image={"test": [{"id": f"img{i}", "dice": test} for i in range(4)]},
    )
    run = SelfTrainRun(
        path=Path(f"/x/{method}_{frac}_{seed}"),
        generations={0: gen0},
        summary=SelftrainSummary(
            final_model="gen0/model",
            final_generation=0,
            total_steps=total if total is not None else steps,
            models_compared=models,
            modality=modality,
        ),
    )
    return ExperimentEntry(
        "linknet", None, seed, run.path.name, "done", run, method=method, label_fraction=frac
    )


def _grid(**over: dict[str, Any]) -> list[ExperimentEntry]:
    """supervised, teacher_student (best of 3 on validation) and fixmatch at 1/4, and the ceiling."""
    base: dict[str, dict[str, Any]] = {
        "supervised": dict(test=0.60, val=0.60, select=0.60, max_steps=80000),
        "teacher_student": dict(
            test=0.62, val=0.70, select=0.61, models=3, total=6000, augmentation="weak / weak+noisy-student"
        ),
        "fixmatch": dict(test=0.65, val=0.66, select=0.64, augmentation="weak+strong:ultrasound"),
    }
    entries = []
    for method, kwargs in base.items():
        kwargs = {**kwargs, **over.get(method, {})}
        entries += [_entry(method, 0.25, s, **kwargs) for s in SEEDS]
    entries += [_entry("supervised", 1.0, s, test=0.8, val=0.8, select=0.8, max_steps=80000) for s in SEEDS]
    return entries


def test_the_method_is_chosen_on_the_selection_images_not_on_best_of_n_validation() -> None:
    cells = collect(_grid(), Warnings())
    # teacher_student's validation Dice is the best of its Teacher and two Students: highest on validation
    assert choose(cells, 0.25) == ("fixmatch", "selection")
    sec = methods_section(_grid(), Warnings())
    table, training, paired, _ = sec.blocks
    rows = {r[1]: r for r in table.rows if r[0] == "0.25"}
    assert rows["fixmatch"][8] == "yes" and rows["teacher_student"][8] == ""
    assert rows["teacher_student"][5] == pytest.approx(0.70) and rows["teacher_student"][6] == pytest.approx(
        0.61
    )
    assert paired.rows[0][1:3] == ["fixmatch", "selection"]
    assert "selection-biased" not in sec.alert


def test_without_selection_scores_the_choice_falls_back_to_validation_and_says_so() -> None:
    entries = _grid(**{m: {"select": None} for m in ("teacher_student", "fixmatch")})
    assert choose(collect(entries, Warnings()), 0.25) == ("teacher_student", "validation")
    sec = methods_section(entries, Warnings())
    table, _, paired, _ = sec.blocks
    assert {r[1]: r[8] for r in table.rows if r[0] == "0.25"}["teacher_student"] == "yes (on validation)"
    assert paired.rows[0][2] == "validation (selection-biased)"
    assert "selection-biased" in sec.alert and "data.select_fraction" in sec.alert


def test_every_arm_shows_its_steps_best_step_augmentation_and_looks() -> None:
    entries = _grid(fixmatch={"steps": 3000, "best_step": 2900})
    seed21 = entries[4].run  # fixmatch, seed 21: best at step 2000 of 2800, not late
    assert seed21 is not None and seed21.summary is not None and entries[4].seed == 21
    seed21.generations[0].summary = seed21.generations[0].summary.model_copy(  # type: ignore[union-attr]
        update={"steps": 2800, "best_step": 2000}
    )
    seed21.summary.total_steps = 2800
    sec = methods_section(entries, Warnings())
    _, training, _, _ = sec.blocks
    assert training.columns[2:] == [
        "Stop",
        "Optimiser steps",
        "Best step",
        "Stopped by",
        "Augmentation",
        "Models compared on validation",
        "Still rising",
    ]
    rows = {(r[0], r[1]): r[2:] for r in training.rows}
    assert rows[("0.25", "teacher_student")] == [
        "converge",
        "6000",
        "1200",
        "patience",
        "weak / weak+noisy-student",
        "3",
        "no",
    ]
    # fixmatch: 2800 and 3000 steps, best at 2000 and 2900: seed 42's is in its last tenth (still rising)
    fm = rows[("0.25", "fixmatch")]
    assert fm[1:3] == ["2900 (2800–3000)", "2450 (2000–2900)"]
    assert fm[4] == "weak+strong:ultrasound" and fm[5] == "1" and fm[6] == "seed 42: step 2900 of 3000"
    assert sec.alert.startswith("Best validation in the last tenth of training")
    assert "fixmatch at 0.25 (seed 42: step 2900 of 3000)." in sec.alert


def test_a_fixed_epochs_or_capped_baseline_is_labelled_and_named() -> None:
    entries = _grid(supervised={"rule": "epochs"})
    sec = methods_section(entries, Warnings())
    methods = [r[1] for r in sec.blocks[0].rows if r[0] == "0.25"]
    assert methods[0] == "supervised (fixed epochs)"
    assert "The supervised baseline at 0.25 trained for a fixed number of epochs" in sec.alert
    capped = _grid(supervised={"stopped_by": "max_steps"})
    alert = methods_section(capped, Warnings()).alert
    assert "The supervised baseline at 0.25 (seed 21, 42) stopped at its step cap" in alert
    assert "fixed number of epochs" not in alert


def test_a_baseline_cap_below_another_arms_steps_is_named() -> None:
    fine = methods_section(_grid(), Warnings()).alert
    assert "step cap was below" not in fine
    short = _grid(supervised={"max_steps": 5000})
    alert = methods_section(short, Warnings()).alert
    assert "teacher_student at 0.25 seed 21 took 6000 steps, supervised's cap was 5000" in alert
    assert "fixmatch at 0.25 seed" not in alert  # 2000 steps, under the cap


def test_runs_with_another_modality_are_named() -> None:
    assert "modalities" not in methods_section(_grid(), Warnings()).alert
    entries = _grid(fixmatch={"modality": "he"})
    alert = methods_section(entries, Warnings()).alert
    assert "The runs recorded different modalities" in alert
    assert "he: fixmatch at 0.25 seed 21, fixmatch at 0.25 seed 42" in alert


def test_converged_runs_make_no_alert() -> None:
    assert methods_section(_grid(), Warnings()).alert == ""
