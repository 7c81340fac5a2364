"""The study's loop (teacher_student) under two-process DDP on the CPU (gloo), through the console script.

Lightning's DDP runs the whole command in every process and keeps the process group between fits, so a
job of several fits only works when every rank runs the same fits in the same order: rank 0 writes the
pseudo-labels and the run files, the other ranks receive its summaries and take the same decisions. Before,
the second rank left after the Teacher and rank 0 failed at the first Student ("Connection closed by peer").
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch

from teachseg.io import read_json
from tests.conftest import run_ddp_cpu


def _run_ddp(cfg: Path, name: str, port: int, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_ddp_cpu("selftrain", cfg, port, f"name={name}", *extra)


def _check_run(run_dir: Path, generations: int) -> dict:
    lineage = read_json(run_dir / "lineage.json")
    assert [g["generation"] for g in lineage["generations"]] == list(range(generations + 1))
    summary = read_json(run_dir / "summary.json")
    assert summary["method"] == "teacher_student"
    assert not [p for p in run_dir.rglob("*") if ".tmp" in p.name or p.name.startswith(".")]
    for g in range(1, generations + 1):
        gen = run_dir / f"gen{g}"
        assert (gen / "model" / "model.safetensors").is_file()
        # 6 labelled + 10 pseudo-labelled images, batch 3: each of 2 ranks takes 8, so 2 full batches (the last
        # partial one is dropped); one process would take 5
        ckpt = torch.load(gen / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
        assert ckpt["global_step"] == 2
        assert read_json(gen / "summary.json")["n_pseudo"] == 10
        manifest = read_json(run_dir / "pseudo" / f"gen{g}" / "manifest.json")
        assert len(manifest["images"]) == 10
    return lineage


@pytest.mark.slow
def test_teacher_student_ddp_two_cpu_processes(synth_data: Path, write_config, tmp_path: Path) -> None:
    cfg = write_config(
        synth_data,
        name="ddp.yaml",
        data={"label_fraction": 0.5, "batch_size": 3},
        train={"epochs": 1},
        selftrain={"method": "teacher_student", "max_generations": 2, "patience": 2},
    )
    port = 29700 + os.getpid() % 500
    proc = _run_ddp(cfg, "ts", port)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = tmp_path / "runs"
    assert [p.name for p in runs.iterdir()] == ["ts"]
    lineage = _check_run(runs / "ts", generations=2)
    assert "max_generations" in lineage["stopped_because"] or "no gain" in lineage["stopped_because"]
    # printed once, by rank 0
    assert proc.stdout.count("self-training lineage") == 1
    assert proc.stderr.count("generation 2: training the Student") == 1

    # an external Teacher and Students initialised from it: the second rank joins only at the first Student
    # (it repeats the Teacher's scoring and the first pseudo-labels itself, before the group exists)
    proc = _run_ddp(
        cfg,
        "external",
        port + 1,
        f"selftrain.teacher_model={runs / 'ts' / 'gen0' / 'model'}",
        "selftrain.student.init_from_teacher=true",
        "selftrain.max_generations=1",
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    _check_run(runs / "external", generations=1)


@pytest.mark.slow
def test_experiment_grid_ddp_two_cpu_processes(synth_data: Path, write_config, tmp_path: Path) -> None:
    """A grid of runs (here two methods, so several fits each) under DDP: every rank walks the grid in step."""
    cfg = write_config(
        synth_data,
        name="grid.yaml",
        data={"label_fraction": 0.5, "batch_size": 3},
        train={"epochs": 1},
        selftrain={"max_generations": 1},
        experiment={"archs": ["linknet"], "seeds": [7], "methods": ["teacher_student", "mean_teacher"]},
    )
    proc = run_ddp_cpu("experiment", cfg, 29200 + os.getpid() % 500, "name=grid")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    exp = tmp_path / "runs" / "grid"
    state = read_json(exp / "experiment.json")
    assert [r["status"] for r in state["runs"]] == ["done", "done"] and state["finished"]
    ts = next(exp / r["dir"] for r in state["runs"] if r["dir"].startswith("teacher_student"))
    _check_run(ts, generations=1)
    assert proc.stdout.count("report: ") == 1
