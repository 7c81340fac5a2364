"""The predict and export commands through ``teachseg.cli.run``."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from teachseg.cli import run
from tests.cli.conftest import one_error_line


def test_predict_slide_and_image(tmp_path, model_dir, slide, capsys):
    from PIL import Image

    Image.fromarray(np.full((40, 60, 3), 128, np.uint8)).save(tmp_path / "frame.png")
    out = tmp_path / "out"
    args = [
        "predict",
        str(model_dir),
        str(slide),
        str(tmp_path / "frame.png"),
        "--out",
        str(out),
        "--no-progress",
    ]
    assert run([*args, "--batch-size", "16"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "cohort.csv",  # one row per input
        "frame_mask.png",
        "frame_overlay.png",
        "frame_prob.png",
        "frame_summary.json",
        "predict_identity.json",  # the model and settings of the run
        "slide.geojson",
        "slide_overlay.png",
        "slide_prob.tif",
        "slide_summary.json",
    ]
    assert "slide:" in capsys.readouterr().out
    assert run([*args, "--resume"]) == 0
    assert "skipped" in capsys.readouterr().out


def test_resume_refuses_another_model_and_overwrite_predicts_again(tmp_path, model_dir, slide, capsys):
    import csv
    import hashlib

    import torch

    from teachseg.models import ModelMeta, build_model, save_model_folder

    torch.manual_seed(1)  # the same architecture, other weights
    other = tmp_path / "other"
    save_model_folder(
        build_model("linknet", "resnet18"), other, ModelMeta("linknet", "resnet18", 64, mpp=0.5)
    )
    out = tmp_path / "out"
    common = [str(slide), "--out", str(out), "--no-progress", "--backend", "torch", "--precision", "fp32"]
    assert run(["predict", str(model_dir), *common]) == 0
    capsys.readouterr()

    assert run(["predict", str(other), *common, "--resume"]) == 2
    err = one_error_line(capsys)
    assert "another model or settings" in err and "model.weights_sha256" in err and "--overwrite" in err
    assert run(["predict", str(model_dir), *common, "--resume", "--threshold", "0.7"]) == 2
    assert "threshold: 0.5 -> 0.7" in one_error_line(capsys)
    assert run(["predict", str(other), *common, "--resume", "--overwrite"]) == 2
    assert "contradict" in one_error_line(capsys)

    assert run(["predict", str(other), *common, "--overwrite"]) == 0
    (row,) = csv.DictReader((out / "cohort.csv").open(encoding="utf-8"))
    weights = hashlib.sha256((other / "model.safetensors").read_bytes()).hexdigest()
    assert row["model"] == str(other) and row["weights_sha256"] == weights
    summary = json.loads((out / "slide_summary.json").read_text())
    assert summary["model"]["weights_sha256"] == weights and summary["identity"] == row["identity"]
    assert run(["predict", str(other), *common, "--resume"]) == 0
    assert "slide: complete, skipped" in capsys.readouterr().out


def test_predict_onnx_backend(tmp_path, model_dir, slide):
    out = tmp_path / "out"
    assert (
        run(["predict", str(model_dir), str(slide), "--out", str(out), "--backend", "onnx", "--no-progress"])
        == 0
    )
    summary = json.loads((out / "slide_summary.json").read_text())
    assert summary["model"]["backend"] == "onnx"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_export(tmp_path, model_dir, capsys):
    assert run(["export", str(model_dir), "--onnx", str(tmp_path / "m.onnx")]) == 0
    assert "max abs difference" in capsys.readouterr().out
    assert (tmp_path / "m.onnx").stat().st_size > 1000


def test_bad_inputs(tmp_path, model_dir, slide, capsys):
    out = tmp_path / "out"
    (tmp_path / "notes.txt").write_text("hello")
    assert run(["predict", str(model_dir), str(tmp_path / "notes.txt"), "--out", str(out)]) == 2
    assert "unsupported file type" in one_error_line(capsys)

    (tmp_path / "broken.svs").write_bytes(b"\x00" * 100)
    assert run(["predict", str(model_dir), str(tmp_path / "broken.svs"), "--out", str(out)]) == 2
    assert "broken.svs" in one_error_line(capsys)

    incomplete = tmp_path / "incomplete"
    incomplete.mkdir()
    (incomplete / "config.json").write_text("{}")
    assert run(["predict", str(incomplete), str(slide), "--out", str(out)]) == 2
    assert "missing" in one_error_line(capsys)

    assert (
        run(["data", "tile", str(slide), "--annotations", str(tmp_path / "none.geojson"), "--out", str(out)])
        == 2
    )
    assert "annotation file not found" in one_error_line(capsys)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output(tmp_path, model_dir, slide, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert run(["predict", str(model_dir), str(slide), "--out", str(locked / "out")]) == 2
        assert "cannot write" in one_error_line(capsys)
    finally:
        locked.chmod(0o700)


def test_output_path_that_is_a_file(tmp_path, model_dir, slide, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    assert run(["predict", str(model_dir), str(slide), "--out", str(blocker / "out")]) == 2
    assert "cannot write" in one_error_line(capsys)


def test_slide_without_resolution_needs_slide_mpp(tmp_path, model_dir, capsys):
    from teachseg.data.synth_slide import synthetic_slide

    nompp = tmp_path / "nompp.tif"
    synthetic_slide(nompp, 1024, mpp=None, seed=5, tile=128)  # two levels: a slide, not an image
    out = tmp_path / "out"
    args = ["predict", str(model_dir), str(nompp), "--out", str(out), "--no-progress"]
    assert run(args) == 2
    err = one_error_line(capsys)
    assert "nompp.tif" in err and "--slide-mpp VALUE" in err and "--ignore-mpp" in err
    assert run([*args, "--slide-mpp", "0.5", "--ignore-mpp"]) == 2
    assert "contradict" in one_error_line(capsys)
    assert run([*args, "--slide-mpp", "0.25"]) == 0
    summary = json.loads((out / "nompp_summary.json").read_text())
    # level 1 is then at 0.5 um/px, the model's resolution: read as it is
    assert summary["mpp_source"] == "--slide-mpp" and summary["mpp_used"] == 0.5 and summary["level"] == 1
    assert run([*args, "--ignore-mpp"]) == 0
    summary = json.loads((out / "nompp_summary.json").read_text())
    assert summary["mpp_source"] == "ignored" and summary["level"] == 0


def test_resume_removes_work_folders_of_a_killed_run(tmp_path, model_dir, slide, capsys):
    from PIL import Image

    Image.fromarray(np.full((40, 60, 3), 128, np.uint8)).save(tmp_path / "frame.png")
    out = tmp_path / "out"
    args = [
        "predict",
        str(model_dir),
        str(slide),
        str(tmp_path / "frame.png"),
        "--out",
        str(out),
        "--no-progress",
    ]
    assert run(args) == 0
    # what a SIGKILL mid-slide leaves: the slide's hidden work folder (and the ONNX export folder), no summary
    (out / "slide_summary.json").unlink()
    for hidden in (".slide.work.k1ll3d", ".frame.work.0ld", ".teachseg-export.x9"):
        (out / hidden).mkdir()
        (out / hidden / "prob.u8").write_bytes(b"\0" * 1024)
    (out / ".slide_prob.k1ll3d00.tmp.tif").write_bytes(b"II*\0")  # an output being renamed into place
    (out / ".slide.k1ll3d00.tmp.geojson").write_text("{")
    assert run([*args, "--resume"]) == 0
    said = capsys.readouterr().out
    assert "removed .slide.work.k1ll3d" in said and "frame: complete, skipped" in said
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert json.loads((out / "slide_summary.json").read_text())["kind"] == "slide"


@pytest.mark.slow
def test_sigkilled_predict_resumes_without_leftovers(tmp_path, model_dir):
    """A real SIGKILL mid-slide leaves the hidden work folder; --resume removes it and finishes the slide."""
    import signal
    import subprocess
    import time

    from teachseg.data.synth_slide import synthetic_slide

    from ..conftest import teachseg_cmd

    big = tmp_path / "big.tif"
    synthetic_slide(big, 2048, mpp=0.5, seed=1, tile=256)
    out = tmp_path / "out"
    args = ["predict", str(model_dir), str(big), "--out", str(out), "--no-progress", "--no-tissue-mask"]
    log = open(tmp_path / "killed.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [*teachseg_cmd(), *args, "--batch-size", "1"], stdout=log, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 120
    try:
        while not (out.is_dir() and list(out.glob(".big.work.*/prob.u8"))):
            assert proc.poll() is None, (tmp_path / "killed.log").read_text()
            assert time.monotonic() < deadline, "no work folder within 2 minutes"
            time.sleep(0.05)
        time.sleep(0.5)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    assert proc.returncode == -signal.SIGKILL
    assert list(out.glob(".big.work.*")) and not (out / "big_summary.json").exists()
    assert run([*args, "--resume"]) == 0
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert json.loads((out / "big_summary.json").read_text())["kind"] == "slide"


def test_cohort_list_with_a_missing_path(tmp_path, model_dir, slide, capsys):
    listing = tmp_path / "slides.txt"
    listing.write_text(f"{slide}\nnot-here.svs\n")
    out = tmp_path / "out"
    assert run(["predict", str(model_dir), str(listing), "--out", str(out), "--no-progress"]) == 2
    err = one_error_line(capsys)
    assert "1 of 2 inputs" in err and "failures.csv" in err
    assert "not-here.svs" in (out / "failures.csv").read_text()
    assert "slide" in (out / "cohort.csv").read_text().splitlines()[1]


def test_rich_progress_bar_follows_the_callbacks():
    from teachseg.cli.predict import RichProgress

    with RichProgress(enabled=True) as bar:
        bar.on_start(2)
        bar.on_item(0, "a")
        bar.on_tiles(4)
        bar.on_advance(2)
        command = bar.display
        assert (command.done, command.total) == (0.5, 2) and command.where == "1/2 a"
        bar.on_advance(2)
        bar.on_item(1, "b")
        bar.on_tiles(1)
        bar.on_advance(1)
        bar.on_finish()
        assert command.done == command.total == 2 and command.where == "2/2 b"
