"""``benchmarks/bench_ssl_busi.py``'s own arithmetic: the sweep's default candidates and the control's statistics.

The benchmark trains for hours; these check, on made-up cells, that what it prints is what was computed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmarks.bench_ssl_busi import (
    gap_closed_over,
    gen0_summaries,
    generation_cell,
    is_default,
    loop_stops,
    optimiser_steps,
    paired_over_images,
    report_control,
    report_equal_steps,
    report_first_students,
    report_steps_control,
    steps_caveats,
)

from teachseg.reports.sections.methods import Cell


def test_sweep_candidates_equal_to_the_package_defaults_are_not_trained_again() -> None:
    assert is_default({"confidence": 0.95})
    assert is_default({"ema_decay": 0.99})
    assert not is_default({"confidence": 0.9})
    assert not is_default({"ema_decay": 0.999})
    assert not is_default({"confidence": 0.95, "ema_decay": 0.999})
    assert not is_default({"epoch_over": "unlabelled"})


def _cell(method: str, per_seed: dict[int, dict[str, float]], val: float) -> Cell:
    return Cell(
        method,
        0.25,
        test={s: sum(v.values()) / len(v) for s, v in per_seed.items()},
        val={s: val for s in per_seed},
        per_image=per_seed,
    )


def _paired(out: str) -> dict[str, str]:
    """The printed ``<label>_at_quarter: mean [lo, hi] (n test images)`` lines, as label -> everything after
    the colon."""
    return {ln.split(":")[0]: ln.split(":", 1)[1].strip() for ln in out.splitlines() if "_at_quarter:" in ln}


def test_paired_difference_averages_each_image_over_the_seeds_it_is_tested_in() -> None:
    a = _cell("a", {1: {"x": 0.8, "y": 0.6}, 2: {"x": 0.6, "z": 0.5}}, 0.5)
    b = _cell("b", {1: {"x": 0.7, "y": 0.6}, 2: {"x": 0.5, "z": 0.2}}, 0.5)
    gain, lo, hi, n = paired_over_images(a, b)
    # image x: (0.1 + 0.1) / 2, y: 0.0, z: 0.3; then the mean over the three images
    assert n == 3
    assert gain == pytest.approx((0.1 + 0.0 + 0.3) / 3)
    assert lo <= gain <= hi


def test_control_report_prints_each_seed_and_both_paired_differences(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sup = _cell("supervised", {21: {"a": 0.5, "b": 0.6}, 42: {"c": 0.4, "d": 0.4}}, 0.55)
    control = _cell("teacher_student[control]", {21: {"a": 0.5, "b": 0.6}, 42: {"c": 0.6, "d": 0.3}}, 0.56)
    ts = _cell("teacher_student", {21: {"a": 0.7, "b": 0.6}, 42: {"c": 0.6, "d": 0.5}}, 0.60)
    report_control(control, ts, sup, 0.25)
    out = capsys.readouterr().out
    assert "seed 21: control 0.550, teacher_student 0.650, supervised 0.550" in out
    assert "seed 42: control 0.450, teacher_student 0.550, supervised 0.400" in out
    paired = _paired(out)
    # control - supervised: a 0, b 0, c +0.2, d -0.1 -> 0.025; teacher_student - control: 0.2, 0, 0, 0.2 -> 0.1
    assert paired["control_minus_supervised_at_quarter"].startswith("0.025 [")
    assert paired["teacher_student_minus_control_at_quarter"].startswith("0.100 [")
    assert paired["teacher_student_minus_control_at_quarter"].endswith("(4 test images)")


def _steps_cells() -> tuple[Cell, Cell, Cell, Cell]:
    """Supervised, the ceiling, a steps control and its arm, two seeds of two test images each."""
    sup = _cell("supervised", {21: {"a": 0.5, "b": 0.6}, 42: {"c": 0.4, "d": 0.4}}, 0.55)
    ceiling = _cell("supervised", {21: {"a": 0.7, "b": 0.8}, 42: {"c": 0.6, "d": 0.6}}, 0.70)
    control = _cell("fixmatch[epoch-unl-control]", {21: {"a": 0.6, "b": 0.7}, 42: {"c": 0.4, "d": 0.4}}, 0.6)
    arm = _cell("fixmatch[epoch-unl]", {21: {"a": 0.7, "b": 0.7}, 42: {"c": 0.5, "d": 0.5}}, 0.62)
    return sup, ceiling, control, arm


def test_steps_control_report_prints_each_seed_its_gap_closed_and_both_paired_differences(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sup, ceiling, control, arm = _steps_cells()
    report_steps_control(control, arm, sup, ceiling, 0.25)
    out = capsys.readouterr().out
    # gap closed per seed: (0.65 - 0.55) / (0.75 - 0.55) = 0.5 and 0 / 0.2 = 0; mean 0.25
    assert "fixmatch[epoch-unl-control] at 0.25" in out and "gap closed 0.250" in out
    assert (
        "seed 21: steps control 0.650 (val 0.600), fixmatch[epoch-unl] 0.700 (val 0.620), supervised 0.550"
        in out
    )
    paired = _paired(out)
    # control - supervised: 0.1, 0.1, 0, 0 -> 0.05; arm - control: 0.1, 0, 0.1, 0.1 -> 0.075
    assert paired["steps_control_minus_supervised_at_quarter"].startswith("0.050 [")
    assert paired["arm_minus_steps_control_at_quarter"].startswith("0.075 [")


def test_steps_control_report_compares_the_chosen_method_with_the_longer_supervised_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sup, ceiling, control, arm = _steps_cells()
    best = _cell("teacher_student", {21: {"a": 0.7, "b": 0.7}, 42: {"c": 0.5, "d": 0.4}}, 0.65)
    report_steps_control(control, arm, sup, ceiling, 0.25, best=best)
    out = capsys.readouterr().out
    paired = _paired(out)
    # best - control: 0.1, 0, 0.1, 0 -> 0.05
    assert paired["best_minus_steps_control_at_quarter"].startswith("0.050 [")
    # against the control: seed 21 (0.70 - 0.65) / (0.75 - 0.65) = 0.5, seed 42 (0.45 - 0.40) / 0.2 = 0.25;
    # against supervised: (0.70 - 0.55) / 0.2 = 0.75 and 0.25; means 0.375 and 0.5
    assert "teacher_student (chosen on validation) with the steps control as its baseline:" in out
    assert "gap closed 0.375 over 2 seed(s) (seed 21 0.50, seed 42 0.25)" in out
    assert "(against the same-epochs supervised baseline: 0.500)" in out
    # when the arm itself is the chosen method, nothing is repeated
    report_steps_control(control, arm, sup, ceiling, 0.25, best=arm)
    assert "best_minus_steps_control" not in capsys.readouterr().out


def _student(exp: Path, seed: int, scores: dict[str, float], val: float) -> None:
    gen = exp / f"teacher_student_l0.25_linknet_seed{seed}" / "gen1"
    gen.mkdir(parents=True)
    test = sum(scores.values()) / len(scores)
    (gen / "summary.json").write_text(json.dumps({"seed": seed, "test_dice": test, "val_dice": val}))
    lines = ["id,class,dice"] + [f"{k},benign,{v}" for k, v in scores.items()]
    (gen / "test_per_image.csv").write_text("\n".join(lines) + "\n")


def test_first_students_are_read_per_seed_and_compared_image_by_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main, control = tmp_path / "ssl", tmp_path / "ssl-control"
    _student(main, 21, {"a": 0.8, "b": 0.6}, 0.7)
    _student(main, 42, {"c": 0.5}, 0.6)
    _student(control, 21, {"a": 0.6, "b": 0.6}, 0.5)
    _student(control, 42, {"c": 0.4}, 0.55)
    # another label fraction's Students are not read
    (main / "teacher_student_l0.125_linknet_seed21" / "gen1").mkdir(parents=True)
    student = generation_cell(main, 0.25, 1)
    assert student.test == pytest.approx({21: 0.7, 42: 0.5})
    assert student.val == {21: 0.7, 42: 0.6}
    assert student.per_image[21] == {"a": 0.8, "b": 0.6}
    report_first_students(student, generation_cell(control, 0.25, 1))
    out = capsys.readouterr().out
    assert "seed 21: with pseudo-labels test 0.700 (val 0.700), control test 0.600 (val 0.500)" in out
    # a +0.2, b 0, c +0.1
    assert "first_student_minus_control_student: 0.100 [" in out
    assert "(3 test images)" in out


def _loop(run: Path, accepted: list[bool], stopped: str) -> None:
    from teachseg.runfiles import GenerationEntry, Lineage

    gens = [GenerationEntry(generation=0, role="teacher", run_dir="gen0")]
    gens += [GenerationEntry(generation=g, role="student", accepted=a) for g, a in enumerate(accepted, 1)]
    kept = max([0, *(g for g, a in enumerate(accepted, 1) if a)])
    run.mkdir(parents=True)
    Lineage(generations=gens, final_generation=kept, stopped_because=stopped).write(run / Lineage.FILE)


def test_loop_stops_say_which_loops_the_generation_cap_ended(tmp_path: Path) -> None:
    _loop(tmp_path / "teacher_student_l0.25_linknet_seed21", [True, True], "reached max_generations=2")
    _loop(tmp_path / "teacher_student_l0.25_linknet_seed42", [True, False], "no gain for 1 generation(s)")
    _loop(tmp_path / "teacher_student_l0.125_linknet_seed21", [True, True, True], "reached max_generations=3")
    (tmp_path / "teacher_student_l0.25_linknet_seed84").mkdir()  # unfinished: no lineage yet
    lines = loop_stops(tmp_path, [0.125, 0.25], patience=1)
    assert lines == [
        "0.125 seed21: 3 Student(s), kept gen3, reached max_generations=3 (ended by the cap, not by the no-gain rule)",
        "0.25 seed21: 2 Student(s), kept gen2, reached max_generations=2 (ended by the cap, not by the no-gain rule)",
        "0.25 seed42: 2 Student(s), kept gen1, no gain for 1 generation(s)",
    ]
    # with patience 2 one rejected Student does not stop a loop, so the cap ended seed 42's too
    assert loop_stops(tmp_path, [0.25], patience=2)[1].endswith("(ended by the cap, not by the no-gain rule)")


def test_gap_closed_over_a_baseline_at_or_above_the_ceiling_leaves_that_seed_out() -> None:
    base = _cell("steps control", {21: {"a": 0.70}, 42: {"a": 0.40}}, 0.6)
    ceiling = _cell("supervised", {21: {"a": 0.68}, 42: {"a": 0.60}}, 0.7)
    best = _cell("teacher_student", {21: {"a": 0.65}, 42: {"a": 0.45}}, 0.65)
    text = gap_closed_over(best, base, ceiling)
    # seed 42: (0.45 - 0.40) / (0.60 - 0.40) = 0.25; seed 21's baseline is above its ceiling
    assert text.startswith("gap closed 0.250 over 1 seed(s) (seed 42 0.25)")
    assert "left out: seed 21 (the baseline is at or above the ceiling)" in text
    assert gap_closed_over(best, base, None) == "gap closed: no ceiling"


def test_a_steps_control_above_the_chosen_method_on_validation_gets_a_caveat() -> None:
    best = _cell("teacher_student", {21: {"a": 0.62}}, 0.647)
    above = _cell("fixmatch[epoch-unl-control]", {21: {"a": 0.63}}, 0.659)
    below = _cell("mean_teacher[epoch-unl-control]", {21: {"a": 0.70}}, 0.60)
    (line,) = steps_caveats([above, below], best)
    assert line.startswith("caveat: fixmatch[epoch-unl-control], a supervised run with more steps")
    assert "val 0.6590 (test 0.6300), at or above teacher_student's val 0.6470 (test 0.6200)" in line
    # chosen on validation: a control better only on test is not flagged
    assert steps_caveats([below], best) == []


def test_optimiser_steps_follow_the_data_modules_last_batch_rule() -> None:
    # 107 labelled images in batches of 8: the partial last batch is dropped (13 a epoch); a set under two
    # batches keeps it
    assert optimiser_steps({"epochs": 40, "n_train": 107}, 8) == 520
    assert optimiser_steps({"epochs": 160, "n_train": 107}, 8) == 2080
    assert optimiser_steps({"epochs": 40, "n_train": 428}, 8) == 2120
    assert optimiser_steps({"epochs": 2, "n_train": 12}, 8) == 4


def _gen0(exp: Path, name: str, seed: int, epochs: int, n_train: int, best: int) -> None:
    gen = exp / f"{name}_seed{seed}" / "gen0"
    gen.mkdir(parents=True)
    summary = {"seed": seed, "epochs": epochs, "n_train": n_train, "best_epoch": best}
    (gen / "summary.json").write_text(json.dumps(summary))


def test_equal_steps_report_prints_steps_the_labels_gap_at_equal_steps_and_the_chosen_method(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sup, ceiling, _, _ = _steps_cells()
    equal = _cell("supervised[equal-steps]", {21: {"a": 0.6, "b": 0.7}, 42: {"c": 0.5, "d": 0.5}}, 0.62)
    best = _cell("teacher_student", {21: {"a": 0.7, "b": 0.7}, 42: {"c": 0.5, "d": 0.4}}, 0.65)
    main_dir, exp = tmp_path / "ssl", tmp_path / "ssl-supervised-equal-steps"
    for seed, best_epoch in ((21, 150), (42, 97)):
        equal.best_epochs[seed] = (best_epoch, 160)
        _gen0(exp, "supervised_l0.25_linknet", seed, 160, 107, best_epoch)
        _gen0(main_dir, "supervised_l0.25_linknet", seed, 40, 107, 40)
        _gen0(main_dir, "supervised_l1_linknet", seed, 40, 428, 33)
    assert sorted(gen0_summaries(exp, "supervised_l0.25_")) == [21, 42]
    report_equal_steps(equal, best, sup, ceiling, 0.25, exp, main_dir, 8)
    out = capsys.readouterr().out
    # gap closed against supervised: seed 21 (0.65 - 0.55) / 0.2 = 0.5, seed 42 (0.5 - 0.4) / 0.2 = 0.5
    assert "supervised[equal-steps] at 0.25" in out and "gap closed 0.500" in out
    assert (
        "seed 21: equal steps 0.650 (val 0.620, 2080 steps, best epoch 150), supervised 0.550 (520 steps), "
        "ceiling 0.750 (2120 steps), teacher_student 0.700" in out
    )
    assert "best epoch 97" in out
    paired = _paired(out)
    # equal - supervised: 0.1, 0.1, 0.1, 0.1; ceiling - equal: 0.1, 0.1, 0.1, 0.1;
    # best - equal: 0.1, 0, 0, -0.1 -> 0
    assert paired["equal_steps_minus_supervised_at_quarter"].startswith("0.100 [")
    assert paired["ceiling_minus_equal_steps_at_quarter"].startswith("0.100 [")
    assert paired["best_minus_equal_steps_at_quarter"].startswith("0.000 [")
    # against the equal-steps baseline: seed 21 (0.70 - 0.65) / (0.75 - 0.65) = 0.5, seed 42 -0.05 / 0.1
    assert "gap closed 0.000 over 2 seed(s) (seed 21 0.50, seed 42 -0.50)" in out
