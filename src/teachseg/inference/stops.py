"""When the output folder fails (disk full, read-only, no permission) rather than an input: the test that
tells the two apart, and the one-line error that stops a ``predict`` run while keeping its finished inputs.

The single-process loop (:mod:`.run`) and the Ray driver (:mod:`.cluster`) both stop through
:func:`output_stop`.
"""

from __future__ import annotations

import contextlib
import errno
from pathlib import Path
from typing import TYPE_CHECKING

from teachseg.errors import OutputError
from teachseg.inference.outputs import remove_unfinished_outputs
from teachseg.io import is_disk_full

if TYPE_CHECKING:
    from teachseg.inference.cohort import CohortTables
    from teachseg.inference.run import CohortPlan


def is_output_problem(exc: BaseException, out_dir: Path) -> bool:
    """True when ``exc`` comes from the output folder (disk full, read-only, no permission), not the input."""
    if isinstance(exc, OutputError) or is_disk_full(exc):
        return True
    if isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM) and exc.filename:
        return Path(exc.filename).resolve().is_relative_to(out_dir.resolve())
    return False


def output_stop(
    plan: CohortPlan,
    index: int,
    exc: BaseException,
    out_dir: Path,
    before: dict[str, tuple[int, int]],
) -> OutputError:
    """Input ``index`` failed on the output folder (:func:`is_output_problem`): remove what it wrote (frees
    space; a rerun predicts it again; ``before``: its :func:`output_stamps` before it started), give it its
    ``failures.csv`` row and return the one-line error that stops the run, the finished inputs kept.

    The single-process loop and :func:`teachseg.inference.cluster.predict_paths_ray` both stop through it.
    """
    name = plan.names[index]
    with contextlib.suppress(OSError):  # the disk may refuse even that; the summary went first
        remove_unfinished_outputs(out_dir, name, before)
    tables = plan.tables if plan.is_cohort else None
    return _output_stopped(
        exc, plan.files[index], name, out_dir, tables, len(plan.summaries), len(plan.files), index
    )


def _output_stopped(
    exc: BaseException,
    path: Path,
    name: str,
    out_dir: Path,
    tables: CohortTables | None,
    done: int,
    total: int,
    index: int | None = None,
) -> OutputError:
    """The one-line error that stops the run after an output-folder failure on ``name`` (a cohort also gets
    its ``failures.csv`` row)."""
    from teachseg.inference.cohort import Failure

    full = is_disk_full(exc) or "no space left" in str(exc)
    what = "no space left on the device" if full else f"cannot write to the output folder ({_reason(exc)})"
    fix = (
        "free some space on that disk (or give another --out) and run again with --resume: finished inputs "
        "are kept and skipped"
        if full
        else "make the output folder writable (or give another --out) and run again with --resume"
    )
    if tables is not None:
        with contextlib.suppress(OSError, OutputError):  # the table may not fit on the disk either
            tables.fail(Failure(str(path), what, fix), index=index)
    kept = f"; stopped after {done} of {total} inputs (complete, listed in cohort.csv)" if done else ""
    return OutputError(
        f"{what} while predicting {name}{kept}",
        path=out_dir,
        fix=fix,
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    text = str(exc).split(". Fix: ")[0]
    path = getattr(exc, "path", None)
    return (text.removeprefix(f"{path}: ") if path else text)[:160]
