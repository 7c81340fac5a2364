"""The study's per-seed tables: layout and numbers as the paper prints them."""

from __future__ import annotations

from pathlib import Path

import pytest

from teachseg.reports.runs import TrainRun
from teachseg.reports.tables.model import fmt
from teachseg.reports.tables.study import comparison_table, findings_table
from teachseg.runfiles import TrainSummary


def _run(tl, vd, vj, ep=None, seed=None, test=None):
    return TrainRun(
        path=Path("x"),
        summary=TrainSummary(
            arch="linknet",
            encoder="resnet34",
            train_loss=tl,
            val_dice=vd,
            val_jaccard=vj,
            best_epoch=ep,
            seed=seed,
            test_dice=test,
        ),
    )


# The study's Table 4 (LinkNet + ResNet34 comparison), as printed.
TABLE4 = [
    (21, (0.0102, 0.9430, 0.893), (0.0061, 0.893, 0.8081)),
    (42, (0.0098, 0.9425, 0.8926), (0.0066, 0.8084, 0.6784)),
    (84, (0.0114, 0.9450, 0.8972), (0.004, 0.9529, 0.9100)),
]
TABLE4_AVERAGE = [0.0104, 0.9435, 0.8942, 0.0055, 0.8847, 0.7988]


def test_comparison_table_reproduces_table4_average_row():
    pairs = [(seed, _run(*t), _run(*s), "gen1 (final)") for seed, t, s in TABLE4]
    tab = comparison_table("linknet", pairs, key="k")
    assert tab.title == "LinkNet Architecture with ResNet34 Base Comparison"
    assert tab.short[:4] == ["Seed", "TL", "VD", "VJ"]
    avg = tab.footer[0]
    assert avg[0] == "Average"
    # The paper truncates some averages (e.g. 0.0105 -> 0.0104), so allow one unit in the last place.
    assert avg[1:7] == pytest.approx(TABLE4_AVERAGE, abs=1.5e-4)
    assert [r[0] for r in tab.footer] == ["Average", "SD", "95% CI (t)"]


def test_findings_table_layout_and_test_columns():
    runs = [
        (21, _run(0.0102, 0.9432, 0.8930, 92, test=0.91)),
        (42, _run(0.0098, 0.9425, 0.8926, 98)),
        (84, None),
    ]
    tab = findings_table("linknet", "Teacher", runs, key="t")
    assert tab.columns == [
        "Seed",
        "Training Loss",
        "Validation Dice",
        "Validation Jaccard",
        "Optimum Epoch",
        "Test Dice",
        "Test Jaccard",
    ]
    assert tab.rows[0][:5] == [21, 0.0102, 0.9432, 0.8930, 92]
    assert tab.rows[2] == [84] + [None] * 6
    assert fmt(tab.footer[0][4]) == "95.0 ± 4.2"
    no_test = findings_table("fpn", "Student", runs[1:2], key="s")
    assert "Test Dice" not in no_test.columns and no_test.footer == []
