"""``report`` killed anywhere and run again writes the same report, and never a half-written one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.faults.harness import (
    CrashJob,
    assert_survived,
    baseline,
    compare_folders,
    crash_matrix,
    teachseg_argv,
)
from tests.faults.training import write_cfg

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finished_run(fault_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from teachseg.cli import run

    base = tmp_path_factory.mktemp("report-run")
    cfg = write_cfg(base / "cfg.yaml", fault_data, base / "runs", "r", train={"epochs": 2})
    assert run(["train", str(cfg)]) == 0
    return base / "runs" / "r"


def test_report_survives_sigkill_anywhere(
    finished_run, tmp_path: Path, logs: Path, kills: int, fault_summary
) -> None:
    parent, ref = tmp_path / "reports", tmp_path / "ref"
    argv = teachseg_argv("report", str(finished_run), "--out", str(parent / "report"))
    job = CrashJob(
        name="report",
        first=argv,
        again=argv,  # idempotent: the report is rebuilt and swapped into place
        out=parent,
        reset=lambda: shutil.rmtree(parent, ignore_errors=True),
        compare=lambda: compare_folders(parent, ref),
        cwd=tmp_path,
    )
    events = baseline(job, logs, ref)
    report = crash_matrix(job, kills, events, seed=24, logs=logs)
    assert_survived(report, fault_summary)
