"""suggestions.csv and the contact sheet."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from teachseg.suggest.outputs import THUMB, Suggestion, contact_sheet, read_suggestions, write_suggestions


def _suggestion(rank: int, spread: np.ndarray, region=None) -> Suggestion:
    return Suggestion(
        rank, f"img{rank}", Path(f"img{rank}.png"), 0.5, 0.4, 0.1, 0.2, math.nan, 0.9, spread, region
    )


def test_the_contact_sheet_shows_the_spread_in_red_where_it_is():
    spread = np.zeros((16, 16), np.float16)
    spread[:, :8] = 0.2  # uncertain on the left half only
    sheet = contact_sheet([_suggestion(1, spread)], lambda s: np.full((64, 64, 3), 128, np.uint8)).astype(int)
    cell = sheet[8 : 8 + THUMB, 8 : 8 + THUMB]
    left, right = cell[:, : THUMB // 4].reshape(-1, 3).mean(0), cell[:, -THUMB // 4 :].reshape(-1, 3).mean(0)
    assert left[0] > 200 and left[1] < 90  # red
    np.testing.assert_allclose(right, [128, 128, 128], atol=2)  # untouched


def test_suggestions_csv_rows_and_region_columns(tmp_path):
    rows = [_suggestion(1, np.zeros((4, 4), np.float16), (10.0, 20.0, 128.0, 128.0))]
    write_suggestions(tmp_path / "s.csv", rows)
    (row,) = read_suggestions(tmp_path / "s.csv")
    assert row["rank"] == "1" and row["id"] == "img1" and row["disagreement"] == ""
    assert (row["x"], row["y"], row["width"], row["height"]) == ("10.00", "20.00", "128.00", "128.00")
