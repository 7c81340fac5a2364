"""``train``, ``selftrain`` and ``experiment`` killed anywhere and resumed end where the uninterrupted run ends."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from teachseg.io import read_json
from tests.faults.harness import CrashJob, assert_survived, baseline, crash_matrix, teachseg_argv
from tests.faults.training import compare_selftrain, compare_training, write_cfg

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:.*exists and is not empty")]

SELFTRAIN = {
    "train": {"epochs": 2},
    "selftrain": {"max_generations": 1, "tta": False, "student": {"epochs": 2}},
}


def _job(
    name: str, argv: list[str], again: list[str], runs: Path, ref: Path, compare, tmp_path: Path
) -> CrashJob:
    return CrashJob(
        name=name,
        first=argv,
        again=again,
        out=runs,
        reset=lambda: shutil.rmtree(runs, ignore_errors=True),
        compare=compare,
        cwd=tmp_path,
    )


def _run(job: CrashJob, kills: int, seed: int, logs: Path, ref: Path, summary: dict[str, str]) -> None:
    """Baseline, crash matrix, verdict; the run folders (checkpoints of ~130 MB each) go afterwards."""
    try:
        events = baseline(job, logs, ref)
        report = crash_matrix(job, kills, events, seed=seed, logs=logs)
    finally:
        job.reset()
        shutil.rmtree(ref, ignore_errors=True)
    assert_survived(report, summary)


def test_train_survives_sigkill_anywhere(
    fault_data, tmp_path: Path, logs: Path, kills: int, fault_summary
) -> None:
    runs, ref = tmp_path / "runs", tmp_path / "ref"
    cfg = write_cfg(tmp_path / "cfg.yaml", fault_data, runs, "t", train={"epochs": 3})
    argv = teachseg_argv("train", str(cfg))
    job = _job(
        "train",
        argv,
        [*argv, "--resume"],
        runs,
        ref,
        lambda: compare_training(runs / "t", ref / "t"),
        tmp_path,
    )
    _run(job, kills, 21, logs, ref, fault_summary)


def test_selftrain_survives_sigkill_anywhere(
    fault_data, tmp_path: Path, logs: Path, kills: int, fault_summary
) -> None:
    runs, ref = tmp_path / "runs", tmp_path / "ref"
    cfg = write_cfg(tmp_path / "cfg.yaml", fault_data, runs, "st", **SELFTRAIN)
    argv = teachseg_argv("selftrain", str(cfg))
    job = _job(
        "selftrain",
        argv,
        [*argv, "--resume"],
        runs,
        ref,
        lambda: compare_selftrain(runs / "st", ref / "st"),
        tmp_path,
    )
    _run(job, kills, 22, logs, ref, fault_summary)


def test_experiment_survives_sigkill_anywhere(
    fault_data, tmp_path: Path, logs: Path, kills: int, fault_summary
) -> None:
    runs, ref = tmp_path / "runs", tmp_path / "ref"
    grid = {"experiment": {"archs": ["linknet"], "seeds": [0]}}
    cfg = write_cfg(tmp_path / "cfg.yaml", fault_data, runs, "exp", **SELFTRAIN, **grid)
    argv = teachseg_argv("experiment", str(cfg))

    def compare() -> None:
        state = read_json(runs / "exp" / "experiment.json")
        assert [r["status"] for r in state["runs"]] == ["done"], state["runs"]
        for r in state["runs"]:
            compare_selftrain(runs / "exp" / r["dir"], ref / "exp" / r["dir"])
        assert (runs / "exp" / "report" / "report.html").is_file()

    # experiment has no --resume: running it again reuses finished runs and resumes interrupted ones
    job = _job("experiment", argv, argv, runs, ref, compare, tmp_path)
    _run(job, kills, 23, logs, ref, fault_summary)
