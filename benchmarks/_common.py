"""Helpers shared by the benchmarks: where the data and outputs live, and robust timing summaries.

The benchmarks run on shared, noisy machines: every figure is a median, and the two sides of a comparison
are measured alternately in the same process so that a burst of load elsewhere hits both.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

REPO = Path(__file__).resolve().parents[1]
#: ``../shared/data/busi`` beside the repository root.
BUSI = REPO.parent / "shared" / "data" / "busi"
#: Scratch space for run folders and synthetic data (git-ignored).
OUTPUT = REPO / "bench-output"


def fail(message: str) -> NoReturn:
    """Print ``message`` to stderr and exit with status 2."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def busi_root(data: Path | None) -> Path:
    """The BUSI folder (``--data`` or the default); exits with a clear message when it is missing."""
    root = Path(data) if data is not None else BUSI
    if not root.is_dir():
        fail(
            f"BUSI dataset not found at {root}; pass --data DIR pointing at a folder with "
            "benign/, malignant/ and normal/ (X.png beside X_mask.png)"
        )
    return root


def set_threads(threads: int | None) -> None:
    """Pin torch's intra-op threads (``None``: leave torch's default, one per core).

    On a machine shared with other jobs, more threads than free cores make every parallel op wait for a
    descheduled thread: on the 2-core shared machine these figures come from, one LinkNet step took 2-10x
    longer with 2 threads than with 1, and varied tenfold from step to step.
    """
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def spread(values: Sequence[float]) -> str:
    """``median (min-max, n)`` of a list of seconds, for the log."""
    return f"{median(values):.3f}s (min {min(values):.3f}, max {max(values):.3f}, n={len(values)})"


def machine() -> str:
    import torch

    cpus = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
        load_text = f", load {load:.1f}"
    except OSError:
        load_text = ""
    return f"{cpus} CPU cores, torch {torch.__version__}, {torch.get_num_threads()} threads{load_text}"


def pick(items: Sequence, n: int, seed: int = 0) -> list:
    """``n`` items drawn without replacement by a seeded shuffle (all of them when ``n`` >= len)."""
    items = list(items)
    random.Random(seed).shuffle(items)
    return items[:n]
