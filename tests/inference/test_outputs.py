"""Predict resume: a slide is complete when its typed ``NAME_summary.json`` reads and lists present outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from teachseg.inference.outputs import is_complete
from teachseg.runfiles import NewerSchemaError, PredictSummary


def _summary(out: Path, **over: object) -> Path:
    summary = PredictSummary(
        input="a.png", kind="image", width=4, height=3, outputs={"mask": "a_mask.png"}, seconds=0.1
    )
    path = summary.write(out / "a_summary.json")
    if over:
        path.write_text(json.dumps({**json.loads(path.read_text()), **over}))
    return path


def test_complete_when_every_listed_output_is_there(tmp_path: Path) -> None:
    _summary(tmp_path)
    assert not is_complete(tmp_path, "a")  # the mask is missing
    (tmp_path / "a_mask.png").write_bytes(b"png")
    assert is_complete(tmp_path, "a")


def test_a_summary_from_teachseg_0_1_still_counts(tmp_path: Path) -> None:
    (tmp_path / "a_mask.png").write_bytes(b"png")
    path = _summary(tmp_path)
    data = json.loads(path.read_text())
    del data["schema_version"]
    path.write_text(json.dumps(data))
    assert is_complete(tmp_path, "a")


@pytest.mark.parametrize("content", ["{torn", "[]", '{"input": "a.png"}'])
def test_a_damaged_summary_means_predict_again(tmp_path: Path, content: str) -> None:
    (tmp_path / "a_mask.png").write_bytes(b"png")
    (tmp_path / "a_summary.json").write_text(content)
    assert not is_complete(tmp_path, "a")


def test_a_summary_from_a_newer_teachseg_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a_mask.png").write_bytes(b"png")
    _summary(tmp_path, schema_version=99)
    with pytest.raises(NewerSchemaError, match="upgrade"):
        is_complete(tmp_path, "a")
