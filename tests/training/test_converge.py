"""train.stop: converge: validation at a cadence of optimiser steps, early stopping on patience, a step cap,
the plateau schedule, and a killed run that resumes to the same stop and the same best checkpoint (#32)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from teachseg.config import Config
from teachseg.training import fit
from teachseg.training.convergence import cadence
from teachseg.training.prepare import prepare_data
from teachseg.training.spec import ModelSpec
from tests.conftest import TINY, _merge


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 labelled tiles: 9 train (2 optimiser steps an epoch in batches of 4, the last dropped), 3 val."""
    from teachseg.data.synth import generate

    return generate(
        tmp_path_factory.mktemp("converge") / "data", n_labelled=12, n_unlabelled=0, size=64, seed=1
    )


def _config(root: Path, out: Path, name: str, **converge: Any) -> Config:
    # lr 1e-9: validation Dice never gains min_delta, so the run stops after exactly `patience` evaluations
    # past the first; evaluations every 3 steps = every 2 epochs of 2 steps
    train = {"stop": "converge", "lr": 1e-9, "converge": {"patience": 2, "eval_every_steps": 3, **converge}}
    raw = _merge(TINY, {"name": name, "output_dir": str(out), "data": {"root": str(root)}, "train": train})
    return Config.model_validate(raw)


def _train(cfg: Config, *, resume: bool = False) -> dict[str, Any]:
    run_dir = cfg.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    prepared = prepare_data(cfg, run_dir, resume=resume)
    summary = fit.train_model(
        cfg, run_dir, prepared.train, prepared.val, spec=ModelSpec.teacher(cfg), resume=resume
    )
    assert summary is not None
    return summary


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_cadence_rounds_the_interval_up_to_whole_epochs_and_the_cap_down() -> None:
    assert cadence(2, 3, 1000) == (2, 250 * 2)  # 4 steps an evaluation, 250 evaluations
    assert cadence(53, 100, 2000) == (2, 36)  # 106 steps an evaluation, 18 of them fit in 2000
    assert cadence(200, 100, 1000) == (1, 5)  # an epoch longer than the interval: every epoch
    assert cadence(53, 100, 50) == (2, 2)  # a cap below one interval still allows one evaluation


def test_stops_on_patience_with_steps_the_plateau_schedule_and_why_in_the_summary(
    data: Path, tmp_path: Path
) -> None:
    summary = _train(_config(data, tmp_path, "patience"))
    rows = _rows(tmp_path / "patience")
    # the first evaluation, then 2 without a gain: stopped by patience at epoch 6 (step 12)
    assert [(int(r["epoch"]), int(r["step"])) for r in rows] == [(2, 4), (4, 8), (6, 12)]
    # the plateau rule halves the rate after each evaluation without a gain (patience 2 -> lr_patience 1)
    assert [float(r["lr"]) for r in rows] == pytest.approx([1e-9, 1e-9, 5e-10], rel=1e-6)
    assert summary["stop"] == {
        "rule": "converge",
        "stopped_by": "patience",
        "patience": 2,
        "min_delta": 0.001,
        "eval_every_steps": 3,
        "eval_every_epochs": 2,
        "steps_per_epoch": 2,
        "max_steps": 20000,
    }
    assert summary["steps"] == 12 and summary["epochs"] == 6
    best = max(rows, key=lambda r: float(r["val_dice"]))
    assert summary["best_step"] == int(best["step"]) and summary["best_epoch"] == int(best["epoch"])


def test_the_cap_ends_a_run_that_would_go_on(data: Path, tmp_path: Path) -> None:
    summary = _train(_config(data, tmp_path, "cap", patience=50, max_steps=9))
    # 4 steps an evaluation: 2 evaluations fit in 9 steps
    assert [int(r["step"]) for r in _rows(tmp_path / "cap")] == [4, 8]
    assert summary["stop"]["stopped_by"] == "max_steps" and summary["steps"] == 8


class Killed(Exception):
    """Stands for SIGKILL: raised right after the n-th ``last.ckpt`` is on disk."""


def _kill_after(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    saved = fit.AtomicCheckpointIO.save_checkpoint
    count = {"last": 0}

    def save(self: Any, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        saved(self, checkpoint, path, storage_options)
        if Path(path).name == "last.ckpt":
            count["last"] += 1
            if count["last"] == n:
                raise Killed

    monkeypatch.setattr(fit.AtomicCheckpointIO, "save_checkpoint", save)


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [2, 4], ids=["mid-way", "after-it-stopped"])
def test_a_killed_run_resumes_to_the_same_stop_and_best_checkpoint(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kill_after: int
) -> None:
    # patience 3: the best evaluation, then 3 without a gain, each halving the rate (lr_patience 1)
    full = _train(_config(data, tmp_path, "full", patience=3))
    assert [float(r["lr"]) for r in _rows(tmp_path / "full")] == pytest.approx(
        [1e-9, 1e-9, 5e-10, 2.5e-10], rel=1e-6
    )
    cfg = _config(data, tmp_path, "killed", patience=3)
    with monkeypatch.context() as m:
        _kill_after(m, kill_after)
        with pytest.raises(Killed):
            _train(cfg)
    killed = tmp_path / "killed"
    assert not (killed / "summary.json").exists() and len(_rows(killed)) == kill_after
    # mid-way: the best (evaluation 1) and one evaluation without a gain are behind it, so a resume that lost
    # the early-stopping state would wait for 3 more, and one that lost the plateau state would not lower the
    # rate after evaluation 3; after it stopped: nothing is left to train
    resumed = _train(cfg, resume=True)
    assert _rows(killed) == _rows(tmp_path / "full")
    for key in ("steps", "best_step", "best_epoch", "epochs", "stop", "val_dice"):
        assert resumed[key] == full[key], key
    # the best checkpoint is the uninterrupted run's, to the bit
    a = load_file(tmp_path / "full" / "model" / "model.safetensors")
    b = load_file(killed / "model" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
