"""``benchmarks/bench_ssl_scarce.py``'s own decisions on made-up cells: every choice reads the selection images,
never test; the supervised baseline's cap covers the longest arm; the pretraining cache is shared by every grid.

The benchmark trains for hours; its end-to-end run is ``--smoke`` (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from benchmarks.bench_ssl_scarce import (
    EIGHTH,
    base_config,
    baseline_cap,
    choose_arm,
    choose_online,
    gap_closed,
    share_pretraining,
)

from teachseg.reports.sections.methods import Cell


def _cell(arm: str, test: dict[int, float], select: dict[int, float], val: float = 0.5) -> Cell:
    return Cell(arm, EIGHTH, test=test, val=dict.fromkeys(test, val), select=select)


def test_the_online_arm_and_the_reported_arm_are_chosen_on_selection_never_on_test() -> None:
    cells = {
        # fixmatch is better on test and on validation, mean_teacher on the selection images
        ("mean_teacher", EIGHTH): _cell("mean_teacher", {21: 0.50, 42: 0.52}, {21: 0.60, 42: 0.62}, val=0.4),
        ("fixmatch", EIGHTH): _cell("fixmatch", {21: 0.70, 42: 0.72}, {21: 0.55, 42: 0.57}, val=0.9),
        ("pretrain", EIGHTH): _cell("pretrain", {21: 0.90, 42: 0.90}, {21: 0.58, 42: 0.58}, val=0.9),
    }
    assert choose_online(cells) == "mean_teacher"
    assert choose_arm(cells, ["mean_teacher", "fixmatch", "pretrain"]) == "mean_teacher"
    assert choose_arm(cells, ["fixmatch", "pretrain"]) == "pretrain"


def test_an_arm_without_selection_scores_is_not_chosen() -> None:
    cells = {
        ("pretrain", EIGHTH): _cell("pretrain", {21: 0.9}, {}),
        ("teacher_student", EIGHTH): _cell("teacher_student", {21: 0.1}, {21: 0.2}),
    }
    assert choose_arm(cells, ["pretrain", "teacher_student"]) == "teacher_student"
    assert choose_arm(cells, ["pretrain"]) is None


def test_gap_closed_is_per_seed_against_its_own_ceiling_then_averaged() -> None:
    sup = _cell("supervised", {21: 0.50, 42: 0.60}, {})
    ceiling = _cell("supervised", {21: 0.70, 42: 0.70}, {})
    arm = _cell("pretrain", {21: 0.60, 42: 0.70}, {})
    mean_gap, per_seed = gap_closed(arm, sup, ceiling)
    assert per_seed == pytest.approx({21: 0.5, 42: 1.0})
    assert mean_gap == pytest.approx(0.75)


def _args(tmp_path: Path, **kw: bool) -> argparse.Namespace:
    return argparse.Namespace(out=tmp_path, batch_size=8, workers=0, quick=False, smoke=False, **kw)


def test_the_baseline_cap_is_a_teacher_and_every_student(tmp_path: Path) -> None:
    base = base_config(_args(tmp_path), tmp_path, 128)
    assert base["train"]["stop"] == "converge" and base["data"]["select_fraction"] == 0.1
    from teachseg.config import Config

    per_model = Config().train.converge.max_steps
    assert baseline_cap(base) == (1 + base["selftrain"]["max_generations"]) * per_model


def test_every_grid_shares_one_pretraining_folder(tmp_path: Path) -> None:
    share_pretraining(tmp_path, "ssl-scarce-pretrain-l0.125")
    share_pretraining(tmp_path, "ssl-scarce-pretrain-teacher_student-l0.125")
    share_pretraining(tmp_path, "ssl-scarce-pretrain-teacher_student-l0.125")  # twice: no error
    a = (tmp_path / "ssl-scarce-pretrain-l0.125" / "pretrain").resolve()
    b = (tmp_path / "ssl-scarce-pretrain-teacher_student-l0.125" / "pretrain").resolve()
    assert a == b == (tmp_path / "pretrain-shared").resolve()
