"""``teachseg pretrain`` killed anywhere (SIGKILL) and resumed ends with the encoder the uninterrupted run makes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from teachseg.io import read_json
from tests.faults.harness import CrashJob, assert_survived, baseline, crash_matrix, teachseg_argv
from tests.faults.training import write_cfg

pytestmark = [pytest.mark.slow]


def compare_pretraining(out: Path, ref: Path) -> None:
    """The record (less timings) and the encoder's weights equal the uninterrupted run's."""
    a, b = read_json(ref / "pretrain.json"), read_json(out / "pretrain.json")
    for key in ("identity", "images", "image_ids", "epochs", "steps", "encoder", "objective", "settings"):
        assert b[key] == a[key], key
    assert b["loss_per_epoch"] == pytest.approx(a["loss_per_epoch"], abs=1e-4)
    wa, wb = load_file(str(ref / "encoder.safetensors")), load_file(str(out / "encoder.safetensors"))
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.allclose(wa[key].float(), wb[key].float(), atol=1e-4), key
    assert not (out / "checkpoints").exists()


def test_pretrain_survives_sigkill_anywhere(
    fault_data, tmp_path: Path, logs: Path, kills: int, fault_summary
) -> None:
    out, ref = tmp_path / "pretrained", tmp_path / "ref"
    cfg = write_cfg(
        tmp_path / "cfg.yaml",
        fault_data,
        tmp_path / "runs",
        "p",
        pretrain={"objective": "densecl", "epochs": 3, "batch_size": 4, "memory_bank": 16},
    )
    argv = teachseg_argv("pretrain", str(cfg), "--out", str(out))
    job = CrashJob(
        name="pretrain",
        first=argv,
        again=[*argv, "--resume"],
        out=out,
        reset=lambda: shutil.rmtree(out, ignore_errors=True),
        compare=lambda: compare_pretraining(out, ref),
        cwd=tmp_path,
    )
    try:
        events = baseline(job, logs, ref)
        report = crash_matrix(job, kills, events, seed=31, logs=logs)
    finally:
        job.reset()
        shutil.rmtree(ref, ignore_errors=True)
    assert_survived(report, fault_summary)
