"""A read-only or full output disk through the CLI: one line naming the folder and the fix, no traceback.

Running as root ignores permissions, so a read-only folder is simulated: creating a file in it fails with
EROFS, as on a read-only mount. A full disk is simulated by a writer that meets ENOSPC.
"""

from __future__ import annotations

import errno
import shutil
import tempfile
from pathlib import Path

from teachseg.cli import run
from teachseg.io import atomic_path
from tests.cli.conftest import one_error_line


def _read_only(monkeypatch, folder: Path) -> None:
    """Creating files in ``folder`` fails as on a read-only file system."""
    real = tempfile.NamedTemporaryFile

    def named(*args, **kwargs):
        if Path(kwargs.get("dir", "")).resolve() == folder.resolve():
            raise OSError(errno.EROFS, "Read-only file system")
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", named)


def _fills_up(monkeypatch, module, attr: str, on_call: int) -> None:
    """``module.attr`` (an atomic writer taking (path, data)) meets ENOSPC on its ``on_call``-th call."""
    real = getattr(module, attr)
    calls = []

    def writer(path, data):
        calls.append(path)
        if len(calls) != on_call:
            return real(path, data)
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(module, attr, writer)


def test_predict_into_a_read_only_folder_fails_before_any_work(
    tmp_path, model_dir, slide, monkeypatch, capsys
):
    import teachseg.inference.run as run_module

    out = tmp_path / "out"
    out.mkdir()
    _read_only(monkeypatch, out)

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the output folder was checked")

    monkeypatch.setattr(run_module, "load_predictor", no_model)
    assert run(["predict", str(model_dir), str(slide), "--out", str(out), "--no-progress"]) == 2
    err = one_error_line(capsys)
    assert f"{out}: cannot write to this output folder (Read-only file system)" in err and "Fix:" in err
    assert list(out.iterdir()) == []


def test_predict_cohort_on_a_disk_that_fills_up(tmp_path, model_dir, slide, monkeypatch, capsys):
    from teachseg.inference import writers

    folder = tmp_path / "batch"
    folder.mkdir()
    for name in ("a", "b", "c"):
        shutil.copy(slide, folder / f"{name}.tif")
    out = tmp_path / "out"
    _fills_up(monkeypatch, writers, "write_geojson", on_call=2)
    assert run(["predict", str(model_dir), str(folder), "--out", str(out), "--no-progress"]) == 2
    err = one_error_line(capsys)
    assert len(err.splitlines()) == 1 and f"{out}: no space left on the device while predicting b" in err
    assert "stopped after 1 of 3 inputs" in err and "run again with --resume" in err
    assert (out / "a_summary.json").is_file() and not list(out.glob("b[._]*"))
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_data_tile_read_only_and_full(tmp_path, slide, monkeypatch, capsys):
    from teachseg.data import tile_slides

    out = tmp_path / "tiles"
    out.mkdir()
    with monkeypatch.context() as m:
        _read_only(m, out)
        assert run(["data", "tile", str(slide), "--out", str(out), "--size", "64"]) == 2
        assert f"{out}: cannot write to this output folder (Read-only file system)" in one_error_line(capsys)
    _fills_up(monkeypatch, tile_slides, "write_png", on_call=3)
    assert run(["data", "tile", str(slide), "--out", str(out), "--size", "64", "--min-tissue", "0"]) == 2
    err = one_error_line(capsys)
    assert "no space left on the device" in err and "free some space" in err
    written = [p for p in out.rglob("*") if p.is_file()]
    assert len(written) == 2 and not [p for p in written if p.name.startswith(".")]  # no half-written tile
