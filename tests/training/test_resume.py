"""A run killed with SIGKILL resumes with --resume to the same result as an uninterrupted run."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml

from teachseg.io import read_json
from tests.conftest import teachseg_cmd

EPOCHS = 4


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _epochs_written(run_dir: Path) -> int:
    try:
        return len(_rows(run_dir))
    except (FileNotFoundError, csv.Error):
        return 0


@pytest.fixture(scope="module")
def small_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from teachseg.data.synth import generate

    return generate(tmp_path_factory.mktemp("resume") / "data", n_labelled=8, n_unlabelled=0, size=64, seed=1)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*exists and is not empty")
def test_killed_run_resumes_to_the_uninterrupted_result(
    small_data: Path, write_config, tmp_path: Path
) -> None:
    from teachseg.cli import run

    train = {"epochs": EPOCHS}
    cfg = write_config(small_data, name="cfg.yaml", train=train)
    runs = tmp_path / "runs"

    # 1. an uninterrupted run
    assert run(["train", str(cfg), "--set", "name=full"]) == 0
    full = runs / "full"

    # 2. the same config in a subprocess, killed once epoch 1 is on disk
    killed = runs / "killed"
    log = open(tmp_path / "killed.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [*teachseg_cmd(), "train", str(cfg), "--set", "name=killed"], stdout=log, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 300
    try:
        while not (_epochs_written(killed) >= 1 and (killed / "checkpoints" / "last.ckpt").is_file()):
            assert proc.poll() is None, (tmp_path / "killed.log").read_text()
            assert time.monotonic() < deadline, "no epoch finished within 5 minutes"
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    assert proc.returncode == -signal.SIGKILL
    done = _epochs_written(killed)
    assert 1 <= done < EPOCHS, f"the run finished {done} epochs before the kill; nothing to resume"
    assert not (killed / "summary.json").exists()

    # whatever the moment of the kill, files under their final names are complete
    ckpt = torch.load(killed / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["epoch"] >= 0 and ckpt["state_dict"]
    assert yaml.safe_load((killed / "config.yaml").read_text())["train"]["epochs"] == EPOCHS
    assert read_json(killed / "split.json")["val"]
    assert all(len(r) == 7 and None not in r.values() for r in _rows(killed))

    # 3. without --resume or --overwrite the interrupted run is refused and left as it is
    before = {p: p.stat().st_mtime_ns for p in killed.rglob("*") if p.is_file()}
    assert run(["train", str(cfg), "--set", "name=killed"]) == 2
    assert {p: p.stat().st_mtime_ns for p in killed.rglob("*") if p.is_file()} == before

    # 4. --resume continues and ends where the uninterrupted run ended
    assert run(["train", str(cfg), "--set", "name=killed", "--resume"]) == 0
    a, b = _rows(full), _rows(killed)
    assert [r["epoch"] for r in b] == [str(e) for e in range(1, EPOCHS + 1)]
    for ra, rb in zip(a, b, strict=True):
        for key in ("train_loss", "val_loss", "val_dice", "val_jaccard"):
            assert float(ra[key]) == pytest.approx(float(rb[key]), abs=1e-4), (ra["epoch"], key)
    sa, sb = read_json(full / "summary.json"), read_json(killed / "summary.json")
    assert sb["val_dice"] == pytest.approx(sa["val_dice"], abs=1e-4)
    assert sb["best_epoch"] == sa["best_epoch"]

    # 5. resuming a finished run returns its summary without training again
    mtime = (killed / "summary.json").stat().st_mtime_ns
    assert run(["train", str(cfg), "--set", "name=killed", "--resume"]) == 0
    assert (killed / "summary.json").stat().st_mtime_ns == mtime
