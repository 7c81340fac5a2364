"""A cohort on one machine: files, folders and path lists; failures.csv per slide; cohort.csv; reruns."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from teachseg.errors import DataError
from teachseg.inference.cohort import COHORT_COLUMNS, expand_lists
from teachseg.inference.options import ModelInfo, PredictOptions
from teachseg.inference.predictor import Predictor
from teachseg.inference.run import predict_paths

from .conftest import EchoRed


def _echo() -> tuple[Predictor, ModelInfo]:
    predictor = Predictor(EchoRed(), mean=(0, 0, 0), std=(1, 1, 1), device="cpu", precision="fp32")
    return predictor, ModelInfo("echo-red", "echo", "none", image_size=128, mpp=1.0, threshold=0.5)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


OPTS = PredictOptions(batch_size=8)


def test_cohort_from_list_and_folder_with_failures_and_rerun(tmp_path, slide_path):
    folder = tmp_path / "batch"
    folder.mkdir()
    shutil.copy(slide_path, folder / "a.tif")
    (folder / "broken.svs").write_bytes(b"\0" * 64)
    shutil.copy(slide_path, tmp_path / "b.tif")
    listing = tmp_path / "cohort.txt"
    listing.write_text("# slides of the cohort\nb.tif\n\nmissing/c.tif\n" + f"{folder}\n")
    out = tmp_path / "out"
    log: list[str] = []

    with pytest.raises(DataError, match=r"2 of 4 inputs could not be read .*failures\.csv"):
        predict_paths(*_echo(), [listing], out, OPTS, log=log.append)

    failures = _rows(out / "failures.csv")
    assert [Path(r["slide"]).name for r in failures] == ["c.tif", "broken.svs"]
    assert failures[0]["error"] == "listed path not found" and "line 4 of" in failures[0]["fix"]
    assert "broken.svs" in failures[1]["error"] and failures[1]["fix"]
    rows = _rows(out / "cohort.csv")
    assert tuple(rows[0]) == COHORT_COLUMNS
    assert [r["name"] for r in rows] == ["b", "a"]
    for r in rows:
        assert float(r["mpp_used"]) == pytest.approx(1.0) and r["mpp_source"] == "slide metadata"
        tissue, tumour = float(r["tissue_area_mm2"]), float(r["tumour_area_mm2"])
        inside = float(r["tumour_in_tissue_mm2"])
        assert tissue > 0 and 0 <= inside <= tumour and inside <= tissue
        # a fraction of the tissue: tumour on the tissue's own pixels (the tumour on whole predicted tiles,
        # chosen with a dilated mask, is 1.8x the tissue here)
        assert float(r["tumour_fraction"]) == pytest.approx(inside / tissue, rel=1e-3, abs=1e-6)
        assert 0 < float(r["tumour_fraction"]) <= 1 < tumour / tissue
        assert float(r["seconds"]) > 0
        assert r["model"] == "echo-red" and r["identity"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]

    # rerun: finished slides are skipped (and stay in cohort.csv); the listed slide that now exists is
    # predicted and its failures.csv row goes; the broken one, removed from the cohort, keeps its row: a row
    # stays until its input is predicted
    (tmp_path / "missing").mkdir()
    shutil.copy(slide_path, tmp_path / "missing" / "c.tif")
    (folder / "broken.svs").unlink()
    log.clear()
    summaries = predict_paths(
        *_echo(), [listing], out, PredictOptions(batch_size=8, resume=True), log=log.append
    )
    assert len(summaries) == 3
    assert sum("complete, skipped" in line for line in log) == 2
    assert [r["name"] for r in _rows(out / "cohort.csv")] == ["b", "c", "a"]
    assert [Path(r["slide"]).name for r in _rows(out / "failures.csv")] == ["broken.svs"]
    assert (
        "failures.csv keeps 1 row(s) of inputs that failed in an earlier run and were not predicted since"
        in log
    )


def test_resume_removes_the_table_temporaries_a_killed_run_left(tmp_path, slide_path):
    # SIGKILL while cohort.csv or failures.csv was being rewritten leaves its hidden temporary file
    # (tests/faults/test_crash_predict.py found it); --resume removes it, a run without --resume leaves it
    out = tmp_path / "out"
    predict_paths(*_echo(), [slide_path], out, OPTS)
    stale = [out / ".cohort.k1ll3d00.tmp.csv", out / ".failures.k1ll3d01.tmp.csv"]
    for p in stale:
        p.write_text("slide,name\n")
    keep = out / ".unrelated.k1ll3d02.tmp.csv"
    keep.write_text("not ours")
    predict_paths(*_echo(), [slide_path], out, OPTS)
    assert all(p.exists() for p in stale)
    log: list[str] = []
    predict_paths(*_echo(), [slide_path], out, PredictOptions(batch_size=8, resume=True), log=log.append)
    assert not any(p.exists() for p in stale)
    assert keep.exists()
    assert sum("left by an interrupted run" in line for line in log) == 2
    assert [r["name"] for r in _rows(out / "cohort.csv")] == [Path(slide_path).stem]


def test_listed_paths_are_relative_to_the_list(tmp_path):
    (tmp_path / "x.tif").write_bytes(b"")
    (tmp_path / "list.txt").write_text("# comment\n\n  x.tif  \n/no/such.svs\n")
    inputs = expand_lists([tmp_path / "list.txt", tmp_path / "x.tif"])
    assert inputs.paths == [tmp_path / "x.tif", tmp_path / "x.tif"]
    assert [(m.slide, m.error) for m in inputs.missing] == [("/no/such.svs", "listed path not found")]
    assert "line 4" in inputs.missing[0].fix


def test_bad_cohort_inputs_are_one_line_errors(tmp_path, slide_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.md").write_text("no slides here")
    with pytest.raises(DataError) as info:
        predict_paths(*_echo(), [empty, slide_path], tmp_path / "out", OPTS)
    msg = str(info.value)
    assert "\n" not in msg and str(empty) in msg and "holds no slide" in msg and "Fix:" in msg

    nothing = tmp_path / "nothing.txt"
    nothing.write_text("gone.svs\n")
    with pytest.raises(DataError) as info:
        predict_paths(*_echo(), [nothing], tmp_path / "out", OPTS)
    msg = str(info.value)
    assert "\n" not in msg and str(nothing) in msg and "gone.svs" in msg and "Fix:" in msg
