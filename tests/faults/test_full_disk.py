"""A real full disk: a small tmpfs (needs root and a container that allows ``mount``; skipped otherwise).

``predict`` into a nearly full folder that holds an earlier prediction, and ``train`` whose checkpoint write
finds the disk full, each end with one error line naming the output and a non-zero exit, and leave the earlier
outputs byte for byte as they were, with no temporary file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.harness import hidden_leftovers, job_env, teachseg_argv
from tests.faults.training import write_cfg

pytestmark = pytest.mark.slow


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 3 MB tmpfs mounted at ``tmp_path/fs``, unmounted afterwards."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()[:200]}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(fs: Path, leave_kib: int) -> None:
    """Fill ``fs`` until only about ``leave_kib`` KiB are free."""
    st = os.statvfs(fs)
    free = st.f_bavail * st.f_frsize
    with open(fs / "filler", "wb") as fh:
        fh.write(b"\0" * max(0, free - leave_kib * 1024))


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _teachseg(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    argv = teachseg_argv(*args)
    return subprocess.run(argv, cwd=cwd, env=job_env(), capture_output=True, text=True, timeout=600)


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode != 0 and len(errors) == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "unexpected" not in errors[0], done.stderr[-3000:]
    return errors[0]


def test_predict_into_a_full_disk_keeps_the_earlier_prediction(small_fs: Path, tmp_path: Path) -> None:
    import torch

    from teachseg.data.synth_slide import synthetic_slide
    from teachseg.models import ModelMeta, build_model, save_model_folder

    torch.manual_seed(0)
    model = tmp_path / "model"
    save_model_folder(
        build_model("linknet", "resnet18"), model, ModelMeta("linknet", "resnet18", 64, mpp=0.5)
    )
    slide = tmp_path / "slide.tif"
    synthetic_slide(slide, 384, tissue_fraction=0.5, mpp=0.5, seed=3, tile=128)
    out = small_fs / "pred"
    first = _teachseg("predict", str(model), str(slide), "--out", str(out), "--no-progress", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    before = _files(out)
    _fill(small_fs, leave_kib=16)
    done = _teachseg("predict", str(model), str(slide), "--out", str(out), "--no-progress", cwd=tmp_path)
    line = _one_error_line(done)
    assert "no space left on the device" in line and str(out) in line, line
    assert _files(out) == before
    assert not hidden_leftovers(out)


def test_train_whose_checkpoint_finds_the_disk_full(small_fs: Path, tmp_path: Path, fault_data: Path) -> None:
    earlier = small_fs / "runs" / "earlier"
    earlier.mkdir(parents=True)
    (earlier / "summary.json").write_text('{"val_dice": 0.5}\n')
    shutil.copytree(fault_data / "masks", earlier / "pred")  # some earlier outputs beside the new run
    before = _files(small_fs / "runs")
    cfg = write_cfg(tmp_path / "cfg.yaml", fault_data, small_fs / "runs", "t", train={"epochs": 1})
    done = _teachseg("train", str(cfg), cwd=tmp_path)
    line = _one_error_line(done)
    assert "no space left on the device" in line and ".ckpt" in line, line
    assert {k: v for k, v in _files(small_fs / "runs").items() if k.startswith("earlier")} == before
    assert not hidden_leftovers(small_fs / "runs")
