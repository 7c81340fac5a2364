"""The fuzz harness: every read of a broken file either loads or raises a one-line teachseg error.

:func:`check` runs one read under a per-input timeout (``signal.setitimer``) and counts it; the session
ends with ``fuzz: N inputs, T tracebacks, H hangs``. ``--fuzz-all`` (or the slow marker's tests) runs
many more mutations per seed file.
"""

from __future__ import annotations

import random
import signal
import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from teachseg.errors import TeachsegError

#: seconds one read may take before it counts as a hang
TIMEOUT_S = 20.0


@dataclass
class FuzzStats:
    inputs: int = 0
    tracebacks: list[str] = field(default_factory=list)
    hangs: list[str] = field(default_factory=list)


STATS = FuzzStats()


class Hang(BaseException):
    """Raised by the timer when one read runs past :data:`TIMEOUT_S` (BaseException: no reader swallows it)."""


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    def fire(signum: int, frame: Any) -> None:
        raise Hang()

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def check(read: Callable[[Path], Any], path: Path, *, timeout: float = TIMEOUT_S) -> TeachsegError | None:
    """Read ``path``; a teachseg error must be one line naming the file. Anything else fails the test."""
    STATS.inputs += 1
    try:
        with _deadline(timeout):
            read(path)
    except TeachsegError as exc:
        text = str(exc)
        assert "\n" not in text, f"{path}: error is not one line: {text!r}"
        assert path.name in text or path.parent.name in text, f"{path}: error does not name the file: {text}"
        assert exc.exit_code != 0
        return exc
    except Hang:
        STATS.hangs.append(str(path))
        pytest.fail(f"{path}: read took more than {timeout} s")
    except Exception as exc:
        STATS.tracebacks.append(f"{path}: {type(exc).__name__}: {exc}")
        raise
    return None


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if STATS.inputs:
        terminalreporter.write_line(
            f"fuzz: {STATS.inputs} inputs, {len(STATS.tracebacks)} tracebacks, {len(STATS.hangs)} hangs"
        )


# --------------------------------------------------------------------------------------------- mutations


def mutations(data: bytes, seed: int, n_flips: int) -> Iterator[tuple[str, bytes]]:
    """Broken variants of ``data``: empty, truncations, single/multi bit flips, zeroed and junk tails."""
    rng = random.Random(seed)
    yield "empty", b""
    for frac in (0.02, 0.25, 0.5, 0.9, 0.999):
        yield f"trunc{frac}", data[: int(len(data) * frac)]
    yield "junk", bytes(rng.getrandbits(8) for _ in range(min(len(data), 512)))
    for i in range(n_flips):
        b = bytearray(data)
        for _ in range(1 + i % 4):
            pos = rng.randrange(len(b))
            b[pos] ^= 1 << rng.randrange(8)
        yield f"flip{i}", bytes(b)
    for i in range(max(1, n_flips // 4)):
        b = bytearray(data)
        pos = rng.randrange(len(b))
        b[pos : pos + 8] = bytes(rng.getrandbits(8) for _ in range(8))
        yield f"bytes{i}", bytes(b)


def png_with_size(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width x height`` (valid CRC) with one tiny IDAT chunk."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture
def fuzz_flips(request: pytest.FixtureRequest) -> int:
    """Bit-flip variants per seed file: few by default, many with ``--fuzz-all``."""
    return 200 if request.config.getoption("--fuzz-all", default=False) else 12
