"""Atomic writes: everything that matters is written to a temporary name and renamed into place.

A run killed at any moment (even SIGKILL) leaves either the old file or the complete new one, never a
partial file under the final name.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from teachseg.errors import OutputError, TeachsegError


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_path(final: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; on success fsync and rename it into place.

    Args:
        final: the path the file should end up at.
        suffix: suffix of the temporary name (defaults to the final suffix, so writers that look at the
            extension, such as Pillow or tifffile, pick the right format).
    """
    final = Path(final)
    suffix = final.suffix if suffix is None else suffix
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=".tmp" + suffix, dir=final.parent)
    except OSError as exc:
        if is_disk_full(exc):
            raise disk_full_error(final) from exc
        raise
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.is_file():
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; outputs are meant to be shared
        os.replace(tmp, final)
    except BaseException as exc:
        # measured before the partial temporary file is deleted, which frees the space again
        full = (
            isinstance(exc, Exception)
            and not isinstance(exc, TeachsegError)
            and is_disk_full(exc, tmp.parent)
        )
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if full:
            raise disk_full_error(final) from exc
        raise


#: errno values that mean the disk (or the user's quota) is full.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
#: How libraries quote ENOSPC in their own errors (the C library's message, Rust's io::Error).
_DISK_FULL_TEXT = re.compile(
    r"No space left on device|Disk quota exceeded|os error 28\b|code: 28\b|StorageFull"
)
#: Less free space than this after a failed write means the write failed for want of space.
_NEARLY_FULL = 1 << 20


def is_disk_full(exc: BaseException, where: str | Path | None = None) -> bool:
    """True when ``exc`` means "no space left on the device".

    That is an :class:`OSError` with ENOSPC or EDQUOT, a library error quoting the system's message, or (with
    ``where``) any other error while the file system holding ``where`` has (nearly) no space left:
    ``torch.save`` reports a short write as a ``RuntimeError`` without the reason.
    """
    if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
        return True
    if _DISK_FULL_TEXT.search(str(exc)):
        return True
    if where is None or isinstance(exc, OSError):
        return False
    try:
        st = os.statvfs(where)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < _NEARLY_FULL


def disk_full_error(path: str | Path | None, doing: str = "writing this file") -> OutputError:
    """The one-line error for a write to ``path`` that found the disk full (the earlier file is intact)."""
    return OutputError(
        f"no space left on the device while {doing} (whatever was there before is unchanged)",
        path=path,
        fix="free some space on that disk, or write to another folder (--out, or output_dir in the config)",
    )


def write_bytes(final: str | Path, data: bytes) -> Path:
    with atomic_path(final) as tmp:
        tmp.write_bytes(data)
    return Path(final)


def write_text(final: str | Path, text: str) -> Path:
    return write_bytes(final, text.encode("utf-8"))


def write_json(final: str | Path, obj: Any) -> Path:
    """Write ``obj`` as strict JSON, atomically: NaN and infinities (an undefined precision or recall) become
    ``null``, so any JSON reader accepts the file."""
    text = json.dumps(_finite(obj), indent=2, sort_keys=False, default=_json_default, allow_nan=False)
    return write_text(final, text + "\n")


def _finite(obj: Any) -> Any:
    if isinstance(obj, float | np.floating):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_png(final: str | Path, array: np.ndarray, compress_level: int = 6) -> Path:
    """Write a uint8 (H, W) or (H, W, 3|4) array as PNG, atomically.

    ``compress_level`` is zlib's (0-9; lossless at every level): 1 writes a photographic image about
    three times faster than the default 6, at a larger file.
    """
    from PIL import Image

    with atomic_path(final, suffix=".png") as tmp:
        Image.fromarray(np.ascontiguousarray(array)).save(tmp, format="PNG", compress_level=compress_level)
    return Path(final)


def read_json(path: str | Path) -> Any:
    """Parse a JSON file. Bad UTF-8, bad JSON and absurdly deep nesting all raise :class:`ValueError`."""
    with open(path, encoding="utf-8") as fh:
        try:
            return json.load(fh)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


def ensure_writable_dir(path: str | Path) -> Path:
    """Create ``path`` if needed and check that files can be written in it."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".teachseg-probe", delete=True):
            pass
    except OSError as exc:
        raise OutputError(
            f"cannot write to this output folder ({exc.strerror or exc})",
            path=path,
            fix="choose a folder you can write to (--out / output_dir) or fix its permissions",
        ) from None
    return path


#: Glob of the temporary files :func:`atomic_path` makes (``.NAME.XXXXXXXX.tmp.SUFFIX``).
ATOMIC_TEMP_GLOB = ".*.????????.tmp*"
#: Hidden work folders teachseg makes beside an output: ``tempfile.mkdtemp`` names (``.model.XXXXXXXX``,
#: ``.NAME.work.XXXXXXXX``), report staging folders (``.report.tmp-PID``), folders being replaced (``.NAME.old``).
_TEMP_DIR = re.compile(r"^\..+\.([a-z0-9_]{8}|tmp-\d+|old)$")


def remove_stale_temporaries(folder: str | Path, *, recursive: bool = False) -> list[Path]:
    """Delete what a killed process left in ``folder``: temporary files of atomic writes, write probes and,
    with ``recursive``, hidden work folders, also in every (non-hidden) subfolder. Returns what was removed.

    Only for a folder one job writes at a time: another job's write in progress would lose its temporary file.
    """
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            if not entry.name.startswith("."):
                if recursive:
                    removed += remove_stale_temporaries(entry, recursive=True)
            elif recursive and _TEMP_DIR.match(entry.name):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
        elif entry.match(ATOMIC_TEMP_GLOB) or entry.name.startswith(".teachseg-probe"):
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def replace_dir(tmp_dir: Path, final: Path) -> None:
    """Move a fully written temporary folder into place, replacing an older one."""
    if final.exists():
        old = final.with_name(f".{final.name}.old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(final, old)
        os.replace(tmp_dir, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp_dir, final)
