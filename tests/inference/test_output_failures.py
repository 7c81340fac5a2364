"""A cohort whose output disk fills up or turns read-only part-way: stop with one error, keep what finished.

The disk is simulated: the GeoJSON writer of the second slide meets ENOSPC (or EACCES) inside its atomic
write, after writing part of its temporary file.
"""

from __future__ import annotations

import csv
import errno
import json
import shutil
from pathlib import Path

import pytest

from teachseg.errors import OutputError
from teachseg.inference import writers
from teachseg.inference.outputs import is_complete
from teachseg.inference.run import predict_paths
from teachseg.io import atomic_path
from tests.inference.test_cohort import OPTS, _echo


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _cohort(tmp_path: Path, slide_path: Path) -> Path:
    folder = tmp_path / "batch"
    folder.mkdir()
    for name in ("a", "b", "c"):
        shutil.copy(slide_path, folder / f"{name}.tif")
    return folder


def _failing_geojson(monkeypatch, error: OSError, on_call: int = 2) -> list[Path]:
    """Make the ``on_call``-th GeoJSON write fail with ``error`` half-way through its temporary file."""
    real = writers.write_geojson
    calls: list[Path] = []

    def write_geojson(path, collection):
        calls.append(Path(path))
        if len(calls) != on_call:
            return real(path, collection)
        with atomic_path(path) as tmp:
            tmp.write_bytes(b'{"type":"FeatureCollection","feat')
            error.filename = str(tmp)
            raise error

    monkeypatch.setattr(writers, "write_geojson", write_geojson)
    return calls


def _visible(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir())


def test_disk_full_mid_cohort_stops_and_keeps_the_finished_slide(tmp_path, slide_path, monkeypatch):
    folder = _cohort(tmp_path, slide_path)
    out = tmp_path / "out"
    calls = _failing_geojson(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))

    with pytest.raises(OutputError) as info:
        predict_paths(*_echo(), [folder], out, OPTS)
    message = str(info.value)
    assert "\n" not in message and message.startswith(
        f"{out}: no space left on the device while predicting b"
    )
    assert "stopped after 1 of 3 inputs" in message
    assert "free some space" in info.value.fix and "--resume" in info.value.fix
    assert [p.stem for p in calls] == ["a", "b"]  # c was not attempted

    # a is complete; nothing of b (no half-written file, no hidden temporary) and nothing of c
    assert is_complete(out, "a")
    assert json.loads((out / "a.geojson").read_text())["type"] == "FeatureCollection"
    assert _visible(out) == sorted(
        [
            "a.geojson",
            "a_overlay.png",
            "a_prob.tif",
            "a_summary.json",
            "cohort.csv",
            "failures.csv",
            "predict_identity.json",
        ]
    )
    assert [r["name"] for r in _rows(out / "cohort.csv")] == ["a"]
    (failure,) = _rows(out / "failures.csv")
    assert Path(failure["slide"]).name == "b.tif" and failure["error"] == "no space left on the device"
    assert "--resume" in failure["fix"]

    # space freed: the rerun keeps a, predicts b and c
    monkeypatch.undo()
    log: list[str] = []
    summaries = predict_paths(
        *_echo(), [folder], out, OPTS.__class__(batch_size=8, resume=True), log=log.append
    )
    assert [Path(s["input"]).stem for s in summaries] == ["a", "b", "c"]
    assert "a: complete, skipped (--resume)" in log
    assert all(is_complete(out, n) for n in "abc") and not (out / "failures.csv").exists()


def test_read_only_output_mid_cohort_stops(tmp_path, slide_path, monkeypatch):
    folder = _cohort(tmp_path, slide_path)
    out = tmp_path / "out"
    _failing_geojson(monkeypatch, PermissionError(errno.EROFS, "Read-only file system"))
    with pytest.raises(
        OutputError, match=r"cannot write to the output folder \(Read-only file system\)"
    ) as info:
        predict_paths(*_echo(), [folder], out, OPTS)
    assert "while predicting b; stopped after 1 of 3" in str(info.value) and "writable" in info.value.fix
    assert is_complete(out, "a") and not list(out.glob("b[._]*")) and not list(out.glob("c[._]*"))
    assert not [n for n in _visible(out) if n.startswith(".")]


def test_unreadable_input_still_only_skips_that_slide(tmp_path, slide_path):
    """An input's own permission problem is not the output folder's: the others go on."""
    from teachseg.inference.stops import is_output_problem

    out = tmp_path / "out"
    out.mkdir()
    assert not is_output_problem(PermissionError(errno.EACCES, "Permission denied", str(slide_path)), out)
    assert is_output_problem(PermissionError(errno.EACCES, "Permission denied", str(out / "x.tif")), out)
    assert is_output_problem(OSError(errno.ENOSPC, "No space left on device"), out)
