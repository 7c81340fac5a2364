"""Fixtures of the crash-anywhere tests: kill counts (``--faults-all``), logs, and the summary lines."""

from __future__ import annotations

from pathlib import Path

import pytest

#: Command -> "faults survived: train 12/12", printed at the end of the session.
SUMMARY: dict[str, str] = {}


@pytest.fixture(scope="session")
def kills(request: pytest.FixtureRequest) -> int:
    """Kill points per command: 10 by default (CI), 30 with ``--faults-all``."""
    return 30 if request.config.getoption("--faults-all") else 10


@pytest.fixture(scope="session")
def fault_summary() -> dict[str, str]:
    return SUMMARY


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    folder = tmp_path / "logs"
    folder.mkdir()
    return folder


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SUMMARY:
        terminalreporter.section("crash anywhere")
        for name in sorted(SUMMARY):
            terminalreporter.write_line(SUMMARY[name])


@pytest.fixture(scope="session")
def fault_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 labelled + 4 unlabelled 64x64 synthetic tiles for the training-type commands."""
    from teachseg.data.synth import generate

    return generate(tmp_path_factory.mktemp("faults") / "data", n_labelled=8, n_unlabelled=4, size=64, seed=1)
