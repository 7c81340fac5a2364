"""`teachseg data check` and `teachseg data synth`: output and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from teachseg.cli import run


def _pair(root: Path, name: str, mask_shape: tuple[int, int] = (10, 12)) -> None:
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((10, 12, 3), 90, np.uint8)).save(root / "images" / f"{name}.png")
    mask = np.zeros(mask_shape, np.uint8)
    mask[:5] = 255
    Image.fromarray(mask).save(root / "masks" / f"{name}_mask.png")


def test_check_clean_dataset_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _pair(tmp_path, "a")
    _pair(tmp_path, "b")
    assert run(["data", "check", str(tmp_path), "--json", str(tmp_path / "report.json")]) == 0
    text = capsys.readouterr().out
    assert "pairs" in text and "2" in text and "mask coverage" in text and "50.0%" in text
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["pairs"] == 2 and report["problems"] == []


def test_check_with_problems_exits_1_and_names_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _pair(tmp_path, "a")
    _pair(tmp_path, "bad", mask_shape=(7, 7))
    (tmp_path / "images" / "trunc.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    assert run(["data", "check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "bad_mask.png" in out and "trunc.png" in out and "does not match" in out


def test_check_missing_folder_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no such folder"
    assert run(["data", "check", str(missing)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "not found" in err and "Traceback" not in err


def test_check_mat_variable_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import scipy.io

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(tmp_path / "images/a.png")
    scipy.io.savemat(tmp_path / "masks/a.mat", {"vec": np.arange(4.0)})
    assert run(["data", "check", str(tmp_path)]) == 1
    assert "a.mat" in capsys.readouterr().out
    scipy.io.savemat(tmp_path / "masks/a.mat", {"gt": np.ones((6, 8)), "big": np.zeros((50, 50))})
    assert run(["data", "check", str(tmp_path), "--mat-variable", "gt"]) == 0
    assert "100.0%" in capsys.readouterr().out


def test_synth_then_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "demo"
    args = [
        "data",
        "synth",
        str(out_dir),
        "--labelled",
        "3",
        "--unlabelled",
        "2",
        "--size",
        "32",
        "--seed",
        "1",
    ]
    assert run(args) == 0
    assert "3 labelled" in capsys.readouterr().out
    assert len(list((out_dir / "images").glob("*.png"))) == 3
    assert len(list((out_dir / "unlabelled").glob("*.png"))) == 2
    assert run(["data", "check", str(out_dir)]) == 0
    assert "pairs" in capsys.readouterr().out


def test_synth_refuses_unrelated_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "keep.txt").write_text("x")
    assert run(["data", "synth", str(tmp_path), "--labelled", "1", "--unlabelled", "0", "--size", "32"]) == 2
    assert str(tmp_path) in capsys.readouterr().err
