"""The report's "What to annotate next" section, read from the suggestions a run folder holds."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from teachseg.reports import build_report
from teachseg.reports.build import assemble
from teachseg.reports.readers import Warnings
from teachseg.suggest.outputs import (
    CONTACT_SHEET,
    SUGGEST_JSON,
    SUGGESTIONS_CSV,
    Suggestion,
    write_contact_sheet,
    write_suggestions,
    write_summary,
)
from tests.reports.fakeruns import make_dataset, make_train_run


@pytest.fixture()
def train_run(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    ids, masks = make_dataset(root, n=8)
    return make_train_run(tmp_path / "run", ids=ids, masks=masks, root=root)


def add_suggestions(run_dir: Path, n: int = 3) -> list[Suggestion]:
    chosen = [
        Suggestion(
            k,
            f"unlabelled/u{k}.png",
            run_dir / f"u{k}.png",
            1.0 / k,
            0.9 / k,
            0.05,
            0.3,
            float("nan"),
            1.0,
            np.full((8, 8), 0.01 * k, np.float16),
        )
        for k in range(1, n + 1)
    ]
    out = run_dir / "suggestions"
    write_suggestions(out / SUGGESTIONS_CSV, chosen)
    write_contact_sheet(out / CONTACT_SHEET, chosen, lambda s: np.full((20, 30, 3), 90, np.uint8))
    write_summary(
        out / SUGGEST_JSON,
        {
            "budget": n,
            "pool": 12,
            "seed": 0,
            "models": [{"role": "model"}],
            "excluded": {"duplicate of a held-out image": ["a"]},
            "settings": {"band": [0.1, 0.9], "area_exponent": 0.5, "diversity": 1.0},
        },
    )
    return chosen


def _section(run_dir: Path):
    rep = assemble(run_dir, Warnings())
    return next((s for s in rep.sections if s.id == "suggest"), None)


def test_no_section_without_suggestions(train_run):
    assert _section(train_run) is None


def test_the_section_lists_the_suggestions_and_shows_the_contact_sheet(train_run):
    add_suggestions(train_run)
    sec = _section(train_run)
    assert sec is not None and sec.title == "What to annotate next"
    table = sec.blocks[0]
    assert [r[:2] for r in table.rows] == [
        [1, "unlabelled/u1.png"],
        [2, "unlabelled/u2.png"],
        [3, "unlabelled/u3.png"],
    ]
    assert table.rows[0][2] == pytest.approx(1.0)
    assert sec.blocks[1].png == (train_run / "suggestions" / CONTACT_SHEET).read_bytes()
    assert "3 of 12 unlabelled images (1 duplicate of a held-out image left out)" in sec.intro


def test_the_report_writes_the_suggestions_table(train_run):
    add_suggestions(train_run)
    html = build_report(train_run)
    rows = list(csv.reader((html.parent / "tables" / "suggestions_suggestions.csv").open(encoding="utf-8")))
    assert rows[0][:2] == ["Rank", "Image"] and len(rows) == 4
    assert "What to annotate next" in html.read_text(encoding="utf-8")


def test_a_damaged_suggestions_file_is_a_warning_not_a_crash(train_run):
    add_suggestions(train_run)
    (train_run / "suggestions" / SUGGEST_JSON).write_text("{broken")
    warn = Warnings()
    rep = assemble(train_run, warn)
    assert not any(s.id == "suggest" for s in rep.sections)
    assert any(SUGGEST_JSON in w for w in warn)
