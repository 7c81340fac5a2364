"""Two-process DDP on the CPU (gloo) through the console script: one run folder, one model, one summary."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
import segmentation_models_pytorch as smp
import torch

from teachseg.io import read_json
from tests.conftest import run_ddp_cpu


@pytest.mark.slow
def test_ddp_two_cpu_processes(synth_data: Path, write_config, tmp_path: Path) -> None:
    cfg = write_config(synth_data, name="ddp.yaml")
    proc = run_ddp_cpu("train", cfg, 29500 + os.getpid() % 1000, "name=ddp", timeout=420)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = tmp_path / "runs"
    assert [p.name for p in runs.iterdir()] == ["ddp"]
    run_dir = runs / "ddp"
    assert len(list(run_dir.rglob("summary.json"))) == 1
    assert len(list(run_dir.rglob("model.safetensors"))) == 1
    assert not [p for p in run_dir.rglob("*") if ".tmp" in p.name]
    summary = read_json(run_dir / "summary.json")
    assert summary["epochs"] == 1 and summary["best_epoch"] == 1
    with open(run_dir / "metrics.csv", newline="") as fh:
        assert [r["epoch"] for r in csv.DictReader(fh)] == ["1"]
    smp.from_pretrained(str(run_dir / "model"))
    # each of the 2 ranks saw half of the 12 training images: 2 batches of <= 4 (one process would take 3)
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert summary["n_train"] == 12
    assert ckpt["global_step"] == 2
    # the header line and the summary table are printed once, by rank 0 only
    assert proc.stderr.count("teachseg train ") == 1
    assert proc.stdout.count("summary:") == 1
