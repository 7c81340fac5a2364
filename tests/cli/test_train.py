"""`teachseg train / evaluate / models` from the command line, and how bad input is reported."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from teachseg.cli import run
from teachseg.io import read_json
from tests.conftest import teachseg_cmd


def _fail(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the CLI, expect exit code 2, and return its single error line."""
    capsys.readouterr()
    code = run(args)
    captured = capsys.readouterr()
    err = captured.err
    assert code == 2, (code, err, captured.out)
    assert "Traceback" not in err and "Traceback" not in captured.out
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    return errors[0]


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _first(folder: Path) -> Path:
    return sorted(folder.iterdir())[0]


def test_empty_folder(tmp_path: Path, write_config, capsys) -> None:
    (tmp_path / "empty").mkdir()
    line = _fail(["train", str(write_config(tmp_path / "empty"))], capsys)
    assert str(tmp_path / "empty") in line and "no images found" in line and "Fix:" in line


def test_images_without_masks(tmp_path: Path, synth_data: Path, write_config, capsys) -> None:
    root = tmp_path / "nomasks"
    shutil.copytree(synth_data / "images", root / "images")
    (root / "masks").mkdir()
    line = _fail(["train", str(write_config(root))], capsys)
    assert str(root) in line and "no image has a mask" in line and "Fix:" in line


@pytest.mark.parametrize("broken, split", [("synth_000.png", "train"), ("synth_010.png", "val")])
def test_truncated_image_in_training(
    tmp_path: Path, synth_data: Path, write_config, capsys, broken: str, split: str
) -> None:
    """Whether the broken image is a training image (preloaded) or a validation one, the error names it."""
    root = _copy(synth_data, tmp_path / "data")
    bad = root / "images" / broken
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    # one training batch is enough to reach validation
    line = _fail(["train", str(write_config(root)), "--set", "train.limit_train_batches=1"], capsys)
    assert str(bad) in line and "cannot decode" in line and "Fix:" in line
    assert f"images/{broken}" in read_json(tmp_path / "runs" / "tiny" / "split.json")[split]


def test_mask_of_another_size(tmp_path: Path, synth_data: Path, write_config, capsys) -> None:
    root = _copy(synth_data, tmp_path / "data")
    masks = sorted((root / "masks").iterdir())
    for m in masks:  # every mask, so it fails whichever split a mask lands in
        Image.fromarray(np.zeros((32, 48), np.uint8)).save(m)
    line = _fail(["train", str(write_config(root))], capsys)
    assert "masks" in line and "does not match its image" in line and "Fix:" in line


def test_mat_mask_without_a_2d_array(tmp_path: Path, synth_data: Path, write_config, capsys) -> None:
    import scipy.io

    root = _copy(synth_data, tmp_path / "data")
    for m in sorted((root / "masks").iterdir()):
        m.unlink()
        scipy.io.savemat(m.with_suffix(".mat"), {"stack": np.zeros((4, 64, 64), np.uint8)})
    line = _fail(["train", str(write_config(root))], capsys)
    assert ".mat" in line and "no 2-D numeric array" in line and "mat_variable" in line


def test_unknown_config_key(synth_data: Path, write_config, capsys) -> None:
    cfg = write_config(synth_data, train={"epochz": 3})
    line = _fail(["train", str(cfg)], capsys)
    assert str(cfg) in line and "train.epochz" in line and "epochs" in line


def test_unknown_key_in_set(synth_data: Path, write_config, capsys) -> None:
    line = _fail(["train", str(write_config(synth_data)), "--set", "data.imagesize=64"], capsys)
    assert "data.imagesize" in line and "image_size" in line


@pytest.mark.parametrize(
    "override, expected",
    [
        ("model.arch=linknett", ["unknown architecture 'linknett'", "did you mean linknet", "fpn"]),
        ("model.encoder=resnet181", ["unknown encoder 'resnet181'", "resnet18", "Fix:"]),
        ("data.image_size=100", ["data.image_size", "96", "128"]),
    ],
)
def test_bad_names_and_sizes(
    synth_data: Path, write_config, capsys, override: str, expected: list[str]
) -> None:
    line = _fail(["train", str(write_config(synth_data)), "--set", override], capsys)
    for text in expected:
        assert text in line


@pytest.mark.parametrize(
    ("override", "suggestion"),
    [
        ("model.arch=fnp", "fpn"),
        ("model.encoder=resnet181", "resnet18"),
        ("train.precision=bf61", "bf16"),
        ("train.accelerator=cpuu", "cpu"),
        ("train.strategy=dpp", "ddp"),
    ],
)
def test_unknown_names_fail_before_data_preparation(
    tmp_path: Path,
    synth_data: Path,
    write_config,
    capsys,
    monkeypatch: pytest.MonkeyPatch,
    override: str,
    suggestion: str,
) -> None:
    """Checked when the config loads: no run folder, no data read (accelerator and strategy used to fail
    only when the Trainer was built, after the split and the run folder were written)."""
    import teachseg.training.prepare as prepare

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("data preparation reached")

    monkeypatch.setattr(prepare, "prepare_data", never)
    started = time.perf_counter()
    line = _fail(["train", str(write_config(synth_data)), "--set", override], capsys)
    assert time.perf_counter() - started < 10  # about a second once smp and Lightning are imported
    key = override.split("=")[0]
    assert key in line and f"did you mean {suggestion}" in line and "Fix:" in line
    assert not (tmp_path / "runs").exists()


def test_output_folder_that_cannot_be_written(tmp_path: Path, synth_data: Path, write_config, capsys) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    cfg = write_config(synth_data, output_dir=str(blocker / "runs"))
    line = _fail(["train", str(cfg)], capsys)
    assert str(blocker) in line and "cannot write" in line and "Fix:" in line


def test_existing_run_folder_is_left_untouched(tiny_run: Path, capsys) -> None:
    before = {p: p.stat().st_mtime_ns for p in tiny_run.rglob("*") if p.is_file()}
    line = _fail(["train", str(tiny_run.parents[1] / "config.yaml")], capsys)
    assert str(tiny_run) in line and "already exists" in line and "--resume" in line and "--overwrite" in line
    assert {p: p.stat().st_mtime_ns for p in tiny_run.rglob("*") if p.is_file()} == before


def test_evaluate_on_an_incomplete_model_folder(
    tmp_path: Path, tiny_run: Path, synth_data: Path, capsys
) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_run / "model", model)
    (model / "config.json").unlink()
    line = _fail(["evaluate", str(model), str(synth_data), "--out", str(tmp_path / "ev")], capsys)
    assert str(model) in line and "config.json" in line and "Fix:" in line
    assert not (tmp_path / "ev").exists()


def test_models_lists_the_study_architectures_with_sizes(capsys) -> None:
    assert run(["models"]) == 0
    out = capsys.readouterr().out
    # not a terminal: plain table rows ("linknet  21.8 M  yes ..."), no box characters
    assert "│" not in out
    lines = {line.split()[0]: line for line in out.splitlines() if len(line.split()) > 2}
    for arch in ("linknet", "fpn"):
        assert arch in lines
        assert " M " in lines[arch] and "yes" in lines[arch]
    assert "encoders" in out


def test_debug_shows_a_traceback(tmp_path: Path, capsys) -> None:
    missing = str(tmp_path / "missing.yaml")
    assert missing in _fail(["train", missing], capsys)  # without --debug: one line
    debug = subprocess.run(
        [*teachseg_cmd(), "train", missing, "--debug"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=120,
    )
    assert debug.returncode != 0
    assert "Traceback" in debug.stderr and "ConfigError" in debug.stderr and missing in debug.stderr
