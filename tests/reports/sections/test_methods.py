"""The Methods section from fake runs: the table holds every method and fraction, the winner is chosen on
the selection images (else validation), gap closed and the paired statistics are computed from the runs'
numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from teachseg.reports.document import Figure
from teachseg.reports.readers import Warnings
from teachseg.reports.runs import ExperimentEntry, SelfTrainRun, TrainRun
from teachseg.reports.sections.methods import Cell, best_on_validation, collect, gap_closed, methods_section
from teachseg.reports.tables.model import PlusMinus
from teachseg.runfiles import SelftrainSummary, TrainSummary

IMAGES = [f"img{i}" for i in range(6)]
# (method, fraction) -> test Dice per seed, and validation Dice (the same for every seed)
TEST = {
    ("supervised", 0.25): {21: 0.50, 42: 0.52},
    ("fixmatch", 0.25): {21: 0.60, 42: 0.64},
    ("mean_teacher", 0.25): {21: 0.70, 42: 0.70},  # best on test, but not on validation
    ("supervised", 1.0): {21: 0.80, 42: 0.82},
}
VAL = {
    ("supervised", 0.25): 0.5,
    ("fixmatch", 0.25): 0.66,
    ("mean_teacher", 0.25): 0.61,
    ("supervised", 1.0): 0.8,
}


def _entry(
    method: str,
    frac: float,
    seed: int,
    best_epoch: int = 30,
    epochs: int = 40,
    select: dict[tuple[str, float], float] | None = VAL,
) -> ExperimentEntry:
    """A finished run of ``method``; its selection Dice from ``select`` (None: a run without a selection
    split)."""
    dice = TEST[(method, frac)][seed]
    rows = [{"id": i, "dice": dice + (0.01 if n % 2 else -0.01)} for n, i in enumerate(IMAGES)]
    gen0 = TrainRun(
        path=Path(f"/x/{method}_{frac}_{seed}/gen0"),
        summary=TrainSummary(
            arch="linknet",
            encoder="resnet34",
            test_dice=dice,
            val_dice=VAL[(method, frac)],
            best_epoch=best_epoch,
            epochs=epochs,
            select_dice=select[(method, frac)] if select is not None else None,
        ),
        per_image={"test": rows},
    )
    run = SelfTrainRun(
        path=Path(f"/x/{method}_{frac}_{seed}"),
        generations={0: gen0},
        summary=SelftrainSummary(final_model="gen0/model", final_generation=0),
    )
    return ExperimentEntry(
        "linknet", None, seed, run.path.name, "done", run, method=method, label_fraction=frac
    )


@pytest.fixture
def entries() -> list[ExperimentEntry]:
    return [_entry(m, f, s) for (m, f) in TEST for s in (21, 42)]


def test_method_is_chosen_on_validation_not_test(entries):
    cells = collect(entries, Warnings())
    assert best_on_validation(cells, 0.25) == "fixmatch"


def test_methods_table_covers_every_run(entries):
    sec = methods_section(entries, Warnings())
    table, training, paired, figure = sec.blocks
    assert isinstance(figure, Figure) and figure.png.startswith(b"\x89PNG")
    rows = {(r[0], r[1]): r for r in table.rows}
    assert set(rows) == {
        ("0.25", "supervised"),
        ("0.25", "fixmatch"),
        ("0.25", "mean_teacher"),
        ("1", "supervised (ceiling)"),
    }
    fm = rows[("0.25", "fixmatch")]
    assert fm[2] == 2 and isinstance(fm[3], PlusMinus) and fm[3].mean == pytest.approx(0.62)
    assert fm[5] == pytest.approx(0.66) and fm[6] == pytest.approx(0.66) and fm[8] == "yes"
    # gap closed per seed, each against its own seed's ceiling: (0.60-0.50)/(0.80-0.50), (0.64-0.52)/(0.82-0.52)
    expected = ((0.10 / 0.30) + (0.12 / 0.30)) / 2
    assert fm[7] == pytest.approx(expected)
    assert rows[("0.25", "mean_teacher")][8] == ""
    assert {(r[0], r[1]) for r in training.rows} == set(rows) - {("1", "supervised (ceiling)")} | {
        ("1", "supervised")
    }
    (row,) = paired.rows
    assert row[0] == "0.25" and row[1] == "fixmatch" and row[2] == "selection" and row[3] == len(IMAGES)
    assert row[4] == pytest.approx(0.11)  # each image: fixmatch - supervised averaged over the two seeds
    assert row[7] == f"{len(IMAGES)} / 0"


def test_runs_without_a_method_give_no_methods_rows():
    plain = _entry("supervised", 0.25, 21)
    plain.method = None
    assert methods_section([plain], Warnings()).blocks == []


def test_gap_closed_pairs_each_seed_with_its_own_ceiling():
    # the seeds' splits differ: seed 21's supervised is near its ceiling, seed 42's is far below its own
    sup = Cell("supervised", 0.25, test={21: 0.620, 42: 0.535})
    ssl = Cell("teacher_student", 0.25, test={21: 0.650, 42: 0.570})
    ceiling = Cell("supervised", 1.0, test={21: 0.672, 42: 0.614})
    expected = (0.030 / 0.052 + 0.035 / 0.079) / 2
    assert gap_closed(ssl, sup, ceiling) == pytest.approx(expected)
    # a seed without its own ceiling is left out rather than compared with another seed's
    assert gap_closed(ssl, sup, Cell("supervised", 1.0, test={42: 0.614})) == pytest.approx(0.035 / 0.079)
    assert np.isnan(gap_closed(ssl, sup, Cell("supervised", 1.0, test={84: 0.7})))


def test_no_alert_when_every_model_was_best_well_before_its_last_epoch(entries):
    # every fake run is best at epoch 30 of 40
    assert methods_section(entries, Warnings()).alert == ""


def test_a_baseline_best_at_its_last_epochs_is_named_in_an_alert():
    # supervised at 1/4 peaks at the last epoch in seed 21 (still rising), mean_teacher at 37 of 40 in seed 42;
    # 36 of 40 is not past nine tenths, and the ceiling is fine
    late = {("supervised", 0.25, 21): 40, ("mean_teacher", 0.25, 42): 37, ("fixmatch", 0.25, 21): 36}
    entries = [_entry(m, f, s, best_epoch=late.get((m, f, s), 30)) for (m, f) in TEST for s in (21, 42)]
    alert = methods_section(entries, Warnings()).alert
    assert alert.startswith("Best validation epoch in the last tenth of training")
    # the supervised baseline first, each seed with its best epoch; nothing else named
    assert "supervised at 0.25 (seed 21: 40 of 40); mean_teacher at 0.25 (seed 42: 37 of 40)." in alert
    assert "fixmatch at" not in alert and "supervised at 1" not in alert
    assert "unlabelled_weight: 0" in alert and "pseudo_weight: 0" in alert


def test_pretraining_cost_is_shown_beside_the_arms_that_used_it(entries):
    def pretrained(seed: int, seconds: float, kind: str) -> ExperimentEntry:
        e = _entry("fixmatch", 0.25, seed)
        e.method = "pretrain"
        gen0 = e.run.generations[0]
        gen0.summary = TrainSummary(
            **gen0.summary.model_dump(exclude_unset=True),
            pretrain={"seconds": seconds, "device_kind": kind, "identity": "x"},
        )
        return e

    cells = collect([*entries, pretrained(21, 600.0, "gpu"), pretrained(42, 1200.0, "gpu")], Warnings())
    assert cells[("pretrain", 0.25)].pretrain_cost() == "15.0 GPU min"
    assert cells[("supervised", 0.25)].pretrain_cost() == ""
    table = methods_section([*entries, pretrained(21, 600.0, "gpu")], Warnings()).blocks[0]
    assert table.columns[-1] == "Pretraining"
    rows = {(r[0], r[1]): r for r in table.rows}
    assert rows[("0.25", "pretrain")][-1] == "10.0 GPU min" and rows[("0.25", "supervised")][-1] == ""
    assert [r[1] for r in table.rows if r[0] == "0.25"][:2] == ["supervised", "pretrain"]
