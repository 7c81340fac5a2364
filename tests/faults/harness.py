"""Crash anywhere: run a teachseg command in a subprocess, SIGKILL it at points chosen from its own progress,
resume it, and check what it left.

Progress is what the job shows: a file appearing or changing under the folders it writes (checkpoints,
per-epoch metrics, per-tile outputs, pseudo-labels, hidden temporary files mid-write) or a line on its
output (``--log-format plain``). Each kill waits for a seeded number of such events, then a small seeded
random delay. The uninterrupted run counts the job's events; a fresh run is killed after a seeded number
of events anywhere in that range, a resumed run within its first half. Kills are chained: the resumed job
is itself killed at the next point, and so on, until one finishes and its outputs are compared with the
uninterrupted run's; then a new chain starts from nothing until every planned kill is spent.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: Seconds one subprocess may run before the harness gives up on it.
PROCESS_TIMEOUT = 300.0
#: Longest random delay after the progress trigger, in seconds.
MAX_DELAY = 0.25
POLL = 0.02


def teachseg_argv(*args: str) -> list[str]:
    """``python -m teachseg --log-format plain ARGS``: plain full lines, one per event, on stdout/stderr."""
    return [sys.executable, "-m", "teachseg", "--log-format", "plain", *args]


def job_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0", PYTHONUNBUFFERED="1")
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
    return env


def snapshot(roots: list[Path]) -> dict[str, tuple[int, int]]:
    """Every file under ``roots`` (hidden ones included) -> (mtime_ns, size)."""
    seen: dict[str, tuple[int, int]] = {}
    for root in roots:
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                path = os.path.join(dirpath, name)
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                seen[path] = (st.st_mtime_ns, st.st_size)
    return seen


@dataclass
class Outcome:
    """One subprocess: how it ended and how many progress events it showed."""

    returncode: int
    events: int
    killed: bool
    log: str


def run_job(
    argv: list[str],
    watch: list[Path],
    log_path: Path,
    *,
    cwd: Path,
    kill_after: int | None = None,
    delay: float = 0.0,
) -> Outcome:
    """Run ``argv``; with ``kill_after``, SIGKILL its process group after that many progress events + ``delay``."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            argv, cwd=cwd, env=job_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        before = snapshot(watch)
        events = 0
        lines = 0
        deadline = time.monotonic() + PROCESS_TIMEOUT
        killed = False
        try:
            while proc.poll() is None:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{argv[4:]} ran past {PROCESS_TIMEOUT:.0f} s")
                time.sleep(POLL)
                now = snapshot(watch)
                events += sum(1 for k, v in now.items() if before.get(k) != v)
                before = now
                n = log_path.read_bytes().count(b"\n")
                events += n - lines
                lines = n
                if kill_after is not None and events >= kill_after:
                    time.sleep(delay)
                    if proc.poll() is None:
                        os.killpg(proc.pid, signal.SIGKILL)
                        killed = True
                    proc.wait()
                    break
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    text = log_path.read_text(errors="replace")
    return Outcome(proc.returncode, events, killed, text)


# ---------------------------------------------------------------------------------------------- checks


def hidden_leftovers(root: Path) -> list[str]:
    """Hidden (dot) files and folders under ``root``: temporary names of atomic writes, work folders."""
    return sorted(str(p.relative_to(root)) for p in root.rglob(".*"))


def partial_files(root: Path) -> list[str]:
    """Files under their final (non-hidden) names that do not parse or decode completely."""
    bad = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or any(part.startswith(".") for part in rel.parts):
            continue
        try:
            _check_file(path)
        except Exception as exc:
            bad.append(f"{rel}: {type(exc).__name__}: {str(exc)[:120]}")
    return bad


def _check_file(path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix in (".json", ".geojson"):
        json.loads(path.read_text(encoding="utf-8"))
    elif suffix == ".png":
        from PIL import Image

        with Image.open(path) as im:
            im.load()
    elif suffix in (".tif", ".tiff"):
        import tifffile

        with tifffile.TiffFile(path) as tf:
            for page in tf.pages:
                page.asarray()  # type: ignore[union-attr]
    elif suffix == ".safetensors":
        from safetensors.numpy import load_file

        load_file(str(path))
    elif suffix == ".ckpt":
        import torch

        torch.load(path, map_location="cpu", weights_only=True)
    elif suffix == ".csv":
        text = path.read_text(encoding="utf-8")
        rows = list(csv.reader(io.StringIO(text)))
        if rows and any(len(r) != len(rows[0]) for r in rows):
            raise ValueError("rows of unequal length (a partial row?)")
        if text and not text.endswith("\n"):
            raise ValueError("no newline at the end (a partial row?)")
    elif suffix in (".yaml", ".yml"):
        import yaml

        yaml.safe_load(path.read_text(encoding="utf-8"))
    elif suffix == ".html" and "</html>" not in path.read_text(encoding="utf-8").lower():
        raise ValueError("no closing </html>")


def png_pixels(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im)


# ----------------------------------------------------------------------------------------------- chains


@dataclass
class CrashJob:
    """A command under test.

    Attributes:
        name: the command, for the summary line.
        first: argv of a fresh run.
        again: argv that continues an interrupted run (``--resume``, or ``first`` for idempotent commands).
        out: the folder the job writes (checked for partial files and leftovers).
        reset: deletes whatever the job wrote, so a chain can start over.
        compare: raises AssertionError when the finished job's outputs differ from the uninterrupted run's.
    """

    name: str
    first: list[str]
    again: list[str]
    out: Path
    reset: Callable[[], None]
    compare: Callable[[], None]
    cwd: Path
    watch: list[Path] = field(default_factory=list)


@dataclass
class CrashReport:
    name: str
    kills: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    chains: int = 0
    runs: int = 0

    @property
    def survived(self) -> int:
        return len(self.kills) - len({f.split(":", 1)[0] for f in self.failures if f.startswith("kill ")})

    def line(self) -> str:
        return (
            f"faults survived: {self.name} {self.survived}/{len(self.kills)} "
            f"({self.runs} processes in {self.chains} chains)"
        )


def baseline(job: CrashJob, logs: Path, keep: Path) -> int:
    """Run the job uninterrupted, copy its outputs to ``keep`` and return its number of progress events."""
    import shutil

    job.reset()
    done = run_job(job.first, job.watch or [job.out], logs / f"{job.name}-baseline.log", cwd=job.cwd)
    assert done.returncode == 0, f"uninterrupted {job.name} failed:\n{done.log[-3000:]}"
    assert not hidden_leftovers(job.out), hidden_leftovers(job.out)
    shutil.copytree(job.out, keep)
    return done.events


def crash_matrix(job: CrashJob, kills: int, events_total: int, seed: int, logs: Path) -> CrashReport:
    """SIGKILL ``job`` ``kills`` times at progress points, resuming after each; check every kill and chain."""
    rng = np.random.default_rng(seed)
    report = CrashReport(job.name)
    watch = job.watch or [job.out]
    fresh = True
    chain_kills: list[int] = []
    step = 0
    while len(report.kills) < kills or not fresh:
        step += 1
        if step > 4 * kills + 10:
            raise AssertionError(f"{job.name}: the crash matrix did not converge")
        if fresh:
            job.reset()
            report.chains += 1
            chain_kills = []
        argv = job.first if fresh else job.again
        if len(report.kills) < kills:
            # a fresh run dies anywhere in the job; a resumed one in its first half, so chains go on
            after = int(
                rng.integers(1, (events_total if argv is job.first else max(events_total // 2, 2)) + 1)
            )
            delay = float(rng.uniform(0.0, MAX_DELAY))
        else:
            after, delay = None, 0.0  # kills spent: let the resumed job finish
        k = len(report.kills) + 1
        res = run_job(
            argv, watch, logs / f"{job.name}-{step}.log", cwd=job.cwd, kill_after=after, delay=delay
        )
        fresh = False
        report.runs += 1
        if res.killed:
            report.kills.append(f"kill {k}: after {after} events + {delay:.2f} s")
            chain_kills.append(k)
            bad = partial_files(job.out)
            if bad:
                report.failures.append(f"kill {k}: partial files under final names: {bad[:5]}")
            continue
        if res.returncode != 0:
            report.failures.append(
                f"kill {chain_kills[-1] if chain_kills else 0}: the resumed {job.name} failed "
                f"(exit {res.returncode}): {res.log.strip().splitlines()[-3:]}"
            )
            fresh = True
            continue
        # the job finished: the chain's end state must equal the uninterrupted run's
        leftovers = hidden_leftovers(job.out)
        problems = []
        if leftovers:
            problems.append(f"temporary files left after the finished job: {leftovers[:5]}")
        bad = partial_files(job.out)
        if bad:
            problems.append(f"partial files: {bad[:5]}")
        try:
            job.compare()
        except (AssertionError, KeyError, OSError, ValueError) as exc:
            problems.append(
                f"outputs differ from the uninterrupted run: {type(exc).__name__}: {str(exc)[:400]}"
            )
        for k in chain_kills or [0]:
            report.failures.extend(f"kill {k}: {p}" for p in problems)
        fresh = True
        if len(report.kills) >= kills:
            break
    return report


def assert_survived(report: CrashReport, collector: dict[str, str]) -> None:
    collector[report.name] = report.line()
    assert not report.failures, report.line() + "\n" + "\n".join(report.failures[:20])


# --------------------------------------------------------------------------------------------- compare

#: JSON keys and CSV columns that hold wall-clock times, which no two runs share.
_STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)? UTC")
TIMING_KEYS = frozenset({"seconds", "wall_seconds", "images_per_second", "created", "finished", "started"})


def compare_folders(out: Path, ref: Path, skip: Callable[[str], bool] = lambda rel: False) -> None:
    """Assert that ``out`` holds the files of ``ref`` with the same content.

    Images compare by decoded pixels, JSON and CSV by content less wall-clock timings, everything else
    byte for byte.
    """

    def listing(root: Path) -> set[str]:
        rels = (p.relative_to(root) for p in root.rglob("*") if p.is_file())
        # hidden files are temporaries, which the leftover check reports
        return {
            str(r) for r in rels if not any(part.startswith(".") for part in r.parts) and not skip(str(r))
        }

    names, want = listing(out), listing(ref)
    assert names == want, (
        f"files differ: missing {sorted(want - names)[:5]}, extra {sorted(names - want)[:5]}"
    )
    for rel in sorted(names):
        a, b = out / rel, ref / rel
        suffix = a.suffix.lower()
        if suffix == ".png":
            same = np.array_equal(png_pixels(a), png_pixels(b))
        elif suffix in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(a) as ta, tifffile.TiffFile(b) as tb:
                same = len(ta.pages) == len(tb.pages) and all(
                    np.array_equal(pa.asarray(), pb.asarray())  # type: ignore[union-attr]
                    for pa, pb in zip(ta.pages, tb.pages, strict=True)
                )
        elif suffix == ".json":
            same = _untimed(json.loads(a.read_text())) == _untimed(json.loads(b.read_text()))
        elif suffix == ".geojson":
            same = _without_ids(json.loads(a.read_text())) == _without_ids(json.loads(b.read_text()))
        elif suffix == ".csv":
            same = _csv_untimed(a) == _csv_untimed(b)
        elif suffix == ".html":  # the report says when it was generated
            same = _STAMP.sub("", a.read_text()) == _STAMP.sub("", b.read_text())
        else:
            same = a.read_bytes() == b.read_bytes()
        assert same, f"{rel} differs from the uninterrupted run's"


def _untimed(obj: object) -> object:
    if isinstance(obj, dict):
        return {k: _untimed(v) for k, v in obj.items() if k not in TIMING_KEYS}
    if isinstance(obj, list):
        return [_untimed(v) for v in obj]
    return obj


def _without_ids(collection: dict[str, Any]) -> dict[str, Any]:
    """A GeoJSON FeatureCollection less its features' ids (random UUIDs, new on every run by design)."""
    features = [{k: v for k, v in f.items() if k != "id"} for f in collection.get("features", [])]
    return {**collection, "features": features}


def _csv_untimed(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [{k: v for k, v in row.items() if k not in TIMING_KEYS} for row in csv.DictReader(fh)]
