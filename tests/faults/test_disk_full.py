"""A full disk (ENOSPC, simulated with monkeypatch: no root needed) gives one error line naming the output,
a non-zero exit, no temporary file, and leaves the earlier file in place."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from teachseg.cli import run
from teachseg.errors import OutputError
from teachseg.io import atomic_path, is_disk_full, write_png, write_text


def _no_space(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert "Traceback" not in err and "unexpected" not in err, err
    return lines[0]


def test_atomic_write_on_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path: Path) -> None:
    final = write_text(tmp_path / "summary.json", '{"old": true}\n')
    with pytest.raises(OutputError) as info, atomic_path(final) as tmp:
        tmp.write_text('{"new": ')
        _no_space()
    assert str(final) in str(info.value) and "no space left" in str(info.value)
    assert final.read_text() == '{"old": true}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]  # no temporary file left


def test_library_errors_that_hide_enospc_count_when_the_disk_is_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """torch.save reports a short write as RuntimeError('... unexpected pos ...'), without the errno."""
    final = tmp_path / "last.ckpt"
    short_write = RuntimeError(
        "[enforce fail at inline_container.cc:672] . unexpected pos 1626880 vs 1626776"
    )
    full = SimpleNamespace(f_bavail=0, f_frsize=4096)
    monkeypatch.setattr(os, "statvfs", lambda path: full)
    with pytest.raises(OutputError, match="no space left"), atomic_path(final) as tmp:
        tmp.write_bytes(b"partial")
        raise short_write
    assert not list(tmp_path.iterdir())
    # the same error with room on the disk is a real bug and stays what it is
    monkeypatch.setattr(os, "statvfs", lambda path: SimpleNamespace(f_bavail=10**6, f_frsize=4096))
    with pytest.raises(RuntimeError, match="unexpected pos"), atomic_path(final):
        raise short_write
    assert is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert is_disk_full(RuntimeError("Error while serializing: IoError(Os { code: 28, kind: StorageFull })"))
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))


def test_cli_write_on_a_full_disk_is_one_line_and_keeps_earlier_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "synth"
    assert run(["data", "synth", str(out), "--labelled", "2", "--unlabelled", "1", "--size", "32"]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    from PIL import Image

    monkeypatch.setattr(Image.Image, "save", _no_space)
    code = run(
        ["data", "synth", str(out), "--labelled", "3", "--unlabelled", "1", "--size", "32", "--seed", "1"]
    )
    assert code == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "no space left on the device" in line and ".png" in line and "Fix:" in line
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not [p for p in tmp_path.rglob(".*")], "temporary files left behind"


def test_cli_enospc_from_outside_the_atomic_writer_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import teachseg.data.synth

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "x" / "log.csv"))

    monkeypatch.setattr(teachseg.data.synth, "generate", full)
    assert run(["data", "synth", str(tmp_path / "x"), "--labelled", "1", "--unlabelled", "0"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "log.csv" in line and "no space left on the device" in line


def test_predict_on_a_full_disk_names_the_output_folder_and_keeps_the_earlier_prediction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    from teachseg.data.synth_slide import synthetic_slide
    from teachseg.inference.blending import RawRaster
    from teachseg.models import ModelMeta, build_model, save_model_folder

    torch.manual_seed(0)
    model = tmp_path / "model"
    save_model_folder(
        build_model("linknet", "resnet18"), model, ModelMeta("linknet", "resnet18", 64, mpp=0.5)
    )
    slide = tmp_path / "s.tif"
    synthetic_slide(slide, 256, mpp=0.5, seed=1, tile=128)
    out = tmp_path / "out"
    args = ["predict", str(model), str(slide), "--out", str(out), "--no-progress"]
    assert run(args) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    monkeypatch.setattr(RawRaster, "write_rows", _no_space)
    assert run(args) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(out) in line and "no space left" in line and "predicting s" in line
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the work folder is gone too
    monkeypatch.undo()
    write_png(tmp_path / "ok.png", np.zeros((4, 4), np.uint8))  # writes work again once there is space
