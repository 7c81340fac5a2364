"""What a person sees on a terminal: ``train`` and ``selftrain`` under a pseudo-terminal of 80 and 120 columns,
for a fixed number of epochs and (at 80 columns) until validation Dice stops improving.

The output is rendered by a terminal emulator (pyte), scrollback included, and read as a person reads it: every
finished epoch is one whole line, alone on its line, 1-based and the same as the run folder's ``metrics.csv``;
while the command runs, the bars show the phase (named after its run folder), the elapsed time and what is left
of the whole command; at the end the bars are gone and the summary table is there. A converging fit has no
known end: no epoch total, no time left, its stopping rule's state on its bar, and one line when it stops.
"""

from __future__ import annotations

import csv
import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pyte = pytest.importorskip("pyte")

pytestmark = pytest.mark.slow  # four training commands in subprocesses, about a minute on two cores

ROWS = 24
NUMBER = r"(\d+\.\d{4})"
#: A whole epoch record: the phase, ``epoch E/N`` (a converging fit: ``epoch E  step S``, the step left out where
#: it does not fit) and the four scores (metrics.csv's names or the short ones).
RECORD = re.compile(
    rf"^(?P<phase>\S+(?: \S+)?) epoch (?P<epoch>\d+)(?:/(?P<epochs>\d+)| {{1,2}}step (?P<step>\d+))?"
    rf" {{1,2}}(?:train_loss|loss) {NUMBER} {{1,2}}(?:val_loss|val: loss) {NUMBER}"
    rf" {{1,2}}(?:val_dice|Dice) (?P<dice>\d+\.\d{{4}}) {{1,2}}(?:val_jaccard|IoU) {NUMBER}$"
)
#: Why and where a fit stopped (the phase is left out where it does not fit).
STOP = re.compile(
    r"^(?:(?P<phase>\S+(?: \S+)?) )?stopped at epoch (?P<epoch>\d+)\b.*; best epoch (?P<best>\d+)\b.*"
    r"Dice (?P<dice>\d\.\d{4})$"
)
#: A score with its name: found on a line without a whole record, it is a piece of a cut record.
SCORE = re.compile(rf"\b(?:train_loss|val_loss|val_dice|val_jaccard|loss|Dice|IoU) {NUMBER}")
CLOCK = re.compile(r"\d+:\d\d:\d\d")


@dataclass
class Screen:
    """What the terminal showed: every line in the end (scrollback first), and the screens seen meanwhile."""

    lines: list[str]
    frames: list[list[str]] = field(default_factory=list)
    returncode: int = 0


def run_on_terminal(args: list[str], columns: int, cwd: Path, timeout: float = 400) -> Screen:
    """Run ``python -m teachseg ARGS`` on a pseudo-terminal of ``columns`` x 24 and render what it writes."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, columns, 0, 0))
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CI", "COLUMNS", "LINES", "TEACHSEG_LOG_FORMAT", "NO_COLOR", "TERM")
    }
    src = str(Path(__file__).resolve().parents[2] / "src")
    env.update(
        TERM="xterm-256color",
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join([src, *filter(None, [os.environ.get("PYTHONPATH")])]),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "teachseg", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=cwd,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    screen = pyte.HistoryScreen(columns, ROWS, history=10_000)
    stream = pyte.ByteStream(screen)
    frames: list[list[str]] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                raise AssertionError(f"teachseg {' '.join(args)} ran past {timeout:.0f} s")
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                continue
            try:
                data = os.read(master, 1 << 16)
            except OSError:  # the command closed the terminal
                break
            if not data:
                break
            stream.feed(data)
            frame = [line.rstrip() for line in screen.display]
            if not frames or frame != frames[-1]:
                frames.append(frame)
    finally:
        if proc.poll() is None and time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        os.close(master)
    history = ["".join(line[x].data for x in range(columns)).rstrip() for line in screen.history.top]
    lines = history + [line.rstrip() for line in screen.display]
    while lines and not lines[-1]:
        lines.pop()
    return Screen(lines, frames, proc.returncode)


def metrics_epochs(path: Path) -> list[tuple[int, str]]:
    """``metrics.csv``'s (epoch, val_dice to 4 decimals) rows."""
    with open(path, encoding="utf-8", newline="") as fh:
        return [(int(row["epoch"]), f"{float(row['val_dice']):.4f}") for row in csv.DictReader(fh)]


Records = dict[str, list[tuple[int, int | None, str]]]


def check_records(screen: Screen, columns: int) -> Records:
    """Every epoch record is whole and alone on its line; returns (epoch, epochs or None, Dice) per phase."""
    seen: Records = {}
    for line in screen.lines:
        assert len(line) <= columns
        assert len(re.findall(r"\bepoch \d+", line, re.IGNORECASE)) <= 1 or STOP.match(line), (
            f"two records on one line: {line!r}"
        )
        assert "it/s" not in line and not re.search(r"\bEpoch \d+/\d+", line), f"Lightning's bar: {line!r}"
        if STOP.match(line):
            continue  # see stop_lines
        if SCORE.search(line) or re.search(r"\bepoch \d+/\d+", line):
            m = RECORD.match(line)
            assert m, f"not a whole record: {line!r}"
            epochs = int(m["epochs"]) if m["epochs"] else None
            seen.setdefault(m["phase"], []).append((int(m["epoch"]), epochs, m["dice"]))
    return seen


def stop_lines(screen: Screen) -> list[re.Match[str]]:
    """The lines saying why and where a fit stopped."""
    return [m for line in screen.lines if (m := STOP.match(line))]


def agree_with_the_run(seen: Records, folders: dict[str, Path], *, converging: bool = False) -> None:
    """The records of each phase are epochs 1..N in order, as its run folder's metrics.csv has them; with
    ``converging`` (validation every epoch) none has an epoch total, else every one has N."""
    assert set(seen) == set(folders), (sorted(seen), sorted(folders))
    for phase, records in seen.items():
        rows = metrics_epochs(folders[phase] / "metrics.csv")
        epochs = {n for _, n, _ in records}
        assert epochs == ({None} if converging else {len(rows)}), (phase, records, rows)
        assert (
            [(e, d) for e, _, d in records] == rows == [(i, rows[i - 1][1]) for i in range(1, len(rows) + 1)]
        )


def stopped_once(screen: Screen, folders: dict[str, Path]) -> None:
    """One stop line for each converging fit, where and why its summary says it stopped."""
    import json

    stops = stop_lines(screen)
    assert len(stops) == len(folders), [m.group(0) for m in stops]
    for m, (phase, folder) in zip(stops, folders.items(), strict=True):
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        assert m["phase"] in (phase, None), m.group(0)
        assert summary["stop"]["stopped_by"] == "patience"
        assert (int(m["epoch"]), int(m["best"])) == (summary["epochs"], summary["best_epoch"]), m.group(0)
        assert m["dice"] == f"{summary['val_dice']:.4f}" and "no gain" in m.group(0)
        assert summary["epochs"] == metrics_epochs(folder / "metrics.csv")[-1][0]


def phase_rows(screen: Screen, phase: str) -> list[str]:
    """A phase's bar as it was drawn."""
    return [line for frame in screen.frames for line in frame if line.startswith(phase + " ")]


def converging_bars(screen: Screen, title: str, phases: list[str]) -> None:
    """No bar shows an epoch total or time left; each fit's shows its stopping rule, the command's the time."""
    rows = bar_rows(screen, title)
    assert rows and all(CLOCK.search(r) for r in rows), rows
    for phase in phases:
        drawn = phase_rows(screen, phase)
        assert any(re.search(r"\bepoch 1 · (?:step \d+|validation)  0/2 without gain", r) for r in drawn), (
            drawn
        )
        assert any(re.search(r"\bepoch 3  best \d\.\d{4} @ 1  1/2 no gain", r) for r in drawn), drawn
    bars = [line for frame in screen.frames for line in frame]
    assert not any(re.search(r"\bepoch \d+/\d+", r) for r in bars), "an epoch total"
    assert not any(" left" in r for r in bars), "a time left"


def bar_rows(screen: Screen, title: str) -> list[str]:
    """The whole command's bar as it was drawn (its row in every screen seen while it ran)."""
    return [line for frame in screen.frames for line in frame if line.startswith(title + " ")]


#: Until validation Dice stops improving, validated every epoch; a gain needs +1 Dice, so every fit stops
#: after 1 + 2 evaluations. The step cap (300) would allow 100 epochs.
CONVERGE = [
    f"--set=train.{key}"
    for key in (
        "stop=converge",
        "converge.eval_every_steps=1",
        "converge.patience=2",
        "converge.min_delta=1",
        "converge.max_steps=300",
    )
]


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory, synth_data: Path) -> Path:
    """A tiny config: 64 px, 2 epochs, one Student at most, on the shared synthetic data."""
    import yaml

    from tests.conftest import TINY, _merge

    base = tmp_path_factory.mktemp("terminal")
    cfg = _merge(
        TINY,
        {
            "output_dir": str(base / "runs"),
            "data": {"root": str(synth_data)},
            "train": {"epochs": 2, "progress_bar": True},
            "selftrain": {"max_generations": 2, "patience": 1},
        },
    )
    (base / "config.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return base


@pytest.mark.parametrize("columns", [80, 120])
def test_train_on_a_terminal(configs: Path, columns: int) -> None:
    name = f"train{columns}"
    screen = run_on_terminal(["train", "config.yaml", "--set", f"name={name}"], columns, configs)
    text = "\n".join(screen.lines)
    assert screen.returncode == 0, text
    run_dir = configs / "runs" / name
    agree_with_the_run(check_records(screen, columns), {"Teacher": run_dir})
    assert "best epoch" in text and "summary:" in text, text  # the summary table at the end
    # why it stopped: once, after the table (a fit of fixed length says nothing as it ends)
    assert [m["epoch"] for m in stop_lines(screen)] == ["2"] and "train.epochs" in text, text
    rows = bar_rows(screen, "train")
    assert rows and any(CLOCK.search(r) and " left" in r for r in rows), rows  # elapsed and an estimate
    phases = [line for frame in screen.frames for line in frame if line.startswith("Teacher ")]
    assert any("epoch 1/2" in p for p in phases) and any("epoch 2/2" in p for p in phases), phases


@pytest.mark.parametrize("columns", [80, 120])
def test_selftrain_on_a_terminal(configs: Path, columns: int) -> None:
    name = f"selftrain{columns}"
    screen = run_on_terminal(["selftrain", "config.yaml", "--set", f"name={name}"], columns, configs)
    text = "\n".join(screen.lines)
    assert screen.returncode == 0, text
    run_dir = configs / "runs" / name
    gens = sorted(p.name for p in run_dir.glob("gen*") if (p / "metrics.csv").is_file())
    assert gens[:2] == ["gen0", "gen1"]
    folders = {f"{g} {'Teacher' if g == 'gen0' else 'Student'}": run_dir / g for g in gens}
    agree_with_the_run(check_records(screen, columns), folders)
    assert "lineage" in text and "stopped:" in text.splitlines()[-1], text
    assert not stop_lines(screen), text  # fits of fixed length
    rows = bar_rows(screen, "selftrain")
    # the generation count is open (patience 1 of 2): the estimate is a bound, and says where the loop is
    assert any("≤" in r and " left" in r and CLOCK.search(r) for r in rows), rows
    assert any("gen 0 of at most 2" in r for r in rows) and any("gen 1 of at most 2" in r for r in rows), rows


def test_predict_results_print_above_the_bars(tmp_path: Path, model_dir: Path, slide: Path) -> None:
    import shutil

    for name in ("a", "b"):
        shutil.copy(slide, tmp_path / f"{name}.tif")
    args = ["predict", str(model_dir), "a.tif", "b.tif", "--out", "out"]
    screen = run_on_terminal(args, 80, tmp_path)
    text = "\n".join(screen.lines)
    assert screen.returncode == 0, text
    results = [line for line in screen.lines if re.match(r"^[ab]: ", line)]
    assert len(results) == 2 and all(re.fullmatch(r"[ab]: .* s\)?", line) for line in results), text
    assert not any("━" in line for line in screen.lines), text  # nothing written across the bars, none left
    assert any(re.search(r"^predict .*[12]/2 [ab]\b", line) for frame in screen.frames for line in frame)


def test_converging_train_on_a_terminal(configs: Path) -> None:
    columns, name = 80, "train-converge"
    screen = run_on_terminal(["train", "config.yaml", "--set", f"name={name}", *CONVERGE], columns, configs)
    text = "\n".join(screen.lines)
    assert screen.returncode == 0, text
    run_dir = configs / "runs" / name
    agree_with_the_run(check_records(screen, columns), {"Teacher": run_dir}, converging=True)
    stopped_once(screen, {"Teacher": run_dir})  # said as it stopped, not again after the table
    assert "best epoch" in text and "summary:" in text, text
    converging_bars(screen, "train", ["Teacher"])


def test_converging_selftrain_on_a_terminal(configs: Path) -> None:
    columns, name = 80, "selftrain-converge"
    screen = run_on_terminal(
        ["selftrain", "config.yaml", "--set", f"name={name}", *CONVERGE], columns, configs
    )
    text = "\n".join(screen.lines)
    assert screen.returncode == 0, text
    run_dir = configs / "runs" / name
    gens = sorted(p.name for p in run_dir.glob("gen*") if (p / "metrics.csv").is_file())
    assert gens[:2] == ["gen0", "gen1"]
    folders = {f"{g} {'Teacher' if g == 'gen0' else 'Student'}": run_dir / g for g in gens}
    agree_with_the_run(check_records(screen, columns), folders, converging=True)
    stopped_once(screen, folders)
    assert "lineage" in text and "stopped:" in text.splitlines()[-1], text
    converging_bars(screen, "selftrain", list(folders))
    rows = bar_rows(screen, "selftrain")
    assert any("gen 0 of at most 2" in r for r in rows) and any("gen 1 of at most 2" in r for r in rows), rows
