"""Every benchmark script starts as the README runs it (``python benchmarks/NAME.py``) and documents itself.

The benchmarks themselves cost minutes to hours and run by hand; this catches the cheap breakage that would
otherwise surface only then: an import that works under pytest's path but not from the command line, a
renamed option, a missing docstring.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "benchmarks").glob("bench_*.py"))


def test_there_are_benchmarks() -> None:
    assert len(SCRIPTS) >= 8


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_benchmark_runs_from_the_command_line(script: Path, tmp_path: Path) -> None:
    # run from elsewhere, as a user would from a clean shell: no PYTHONPATH, cwd outside the repository
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    res = subprocess.run(
        [sys.executable, str(script), "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.startswith("usage: ")
    # the docstring says what it measures and how to run it
    assert f"benchmarks/{script.name}" in res.stdout
