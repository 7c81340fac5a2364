"""Helpers shared by the section builders."""

from __future__ import annotations

import math

from teachseg.reports.sections.common import by_dice, class_series, dice_by_class, joined_split


def test_by_dice_ranks_worst_first_and_drops_missing_scores():
    rows = [
        {"id": "b", "dice": 0.5},
        {"id": "a", "dice": 0.5},
        {"id": "c", "dice": math.nan},
        {"id": "d", "dice": None},
        {"id": "e", "dice": 0.1},
    ]
    assert [r["id"] for r in by_dice(rows)] == ["e", "a", "b"]


def test_per_class_scores_average_each_image_over_seeds():
    rows = [{"id": "x", "class": "benign", "dice": 0.2}, {"id": "y", "dice": 0.4}]
    assert dice_by_class(rows) == {"benign": [0.2], "all": [0.4]}
    per_seed = [{"x": 0.2, "y": 0.4}, {"x": 0.4}]
    series = class_series(per_seed, {"x": "benign"})
    assert len(series["benign"]) == 1 and math.isclose(series["benign"][0], 0.3)
    assert series["all"] == [0.4]


def test_joined_split_names_test_before_val():
    assert joined_split({"val", "test"}) == "test+val"
    assert joined_split({"val"}) == "val" and joined_split(set()) == ""
