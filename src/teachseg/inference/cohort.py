"""A cohort of slides on one machine: inputs from files, folders and path lists; per-slide failures and a table.

``DIR/cohort.csv`` (one row per predicted or already-finished input) and ``DIR/failures.csv`` (one row per
input that could not be predicted, with the fix) are rewritten atomically after every slide, so a killed run
leaves both up to date with the slides it finished.
"""

from __future__ import annotations

import bisect
import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from teachseg.errors import DataError
from teachseg.inference.outputs import remove_atomic_temporaries
from teachseg.io import write_text

#: Inputs with these suffixes are text files listing one path per line (blank lines and ``#`` comments
#: skipped; relative paths are relative to the list's folder).
LIST_SUFFIXES = (".txt", ".lst", ".list")
COHORT_CSV = "cohort.csv"
FAILURES_CSV = "failures.csv"
COHORT_COLUMNS = (
    "slide",
    "name",
    "mpp_used",
    "mpp_source",
    "tissue_area_mm2",
    "tumour_area_mm2",
    "tumour_fraction",
    "seconds",
)
FAILURE_COLUMNS = ("slide", "error", "fix")


@dataclass
class Failure:
    """An input that could not be predicted: which file, what went wrong, what to do."""

    slide: str
    error: str
    fix: str


@dataclass
class Inputs:
    """The inputs to predict, and the listed paths that do not exist (recorded as failures, not raised)."""

    paths: list[Path] = field(default_factory=list)
    missing: list[Failure] = field(default_factory=list)


def read_path_list(path: Path) -> Inputs:
    """The paths listed in ``path`` (one a line); listed paths that do not exist become failures."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(
            f"cannot read the list of slides ({exc})",
            path=path,
            fix="give a UTF-8 text file, one path a line",
        ) from None
    found = Inputs()
    for number, line in enumerate(lines, 1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        p = Path(entry).expanduser()
        p = p if p.is_absolute() else path.parent / p
        if p.exists():
            found.paths.append(p)
        else:
            found.missing.append(
                Failure(str(p), "listed path not found", f"correct or remove line {number} of {path}")
            )
    if not found.paths:
        first = f" (the first: {found.missing[0].slide})" if found.missing else ""
        raise DataError(
            f"unsupported file type ({path.suffix}), and not a list of slides: none of its lines names an "
            f"existing file or folder{first}",
            path=path,
            fix="give slides or folders, or a text file listing one existing slide or folder path a line",
        )
    return found


def expand_lists(paths: list[Path]) -> Inputs:
    """Replace text files listing paths by the paths they list; every other input stays as it is."""
    out = Inputs()
    for p in paths:
        if p.is_file() and p.suffix.lower() in LIST_SUFFIXES:
            listed = read_path_list(p)
            out.paths.extend(listed.paths)
            out.missing.extend(listed.missing)
        else:
            out.paths.append(p)
    return out


def cohort_row(name: str, summary: dict[str, Any]) -> dict[str, Any]:
    """One ``cohort.csv`` row from a summary (areas in mm^2, empty when the resolution is unknown)."""
    fraction = summary.get("tumour_fraction_of_tissue", summary.get("tumour_fraction"))
    return {
        "slide": summary.get("input", ""),
        "name": name,
        "mpp_used": summary.get("mpp_used"),
        "mpp_source": summary.get("mpp_source"),
        "tissue_area_mm2": summary.get("tissue_area_mm2"),
        "tumour_area_mm2": summary.get("tumour_area_mm2"),
        "tumour_fraction": fraction,
        "seconds": summary.get("seconds"),
    }


def _csv_text(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row[k] for k in columns})
    return buf.getvalue()


class CohortTables:
    """Keeps ``cohort.csv`` and ``failures.csv`` in ``out_dir`` up to date, each written atomically.

    Rows are kept in input order (``index``) whatever order they come in (a cluster finishes slides out of
    order); rows without an index (listed paths that do not exist) come first.
    """

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self.rows: list[dict[str, Any]] = []
        self.failures: list[Failure] = []
        self._row_keys: list[int] = []
        self._failure_keys: list[int] = []

    def add(self, name: str, summary: dict[str, Any], index: int | None = None) -> None:
        """Add the row of a predicted slide (input number ``index``) and rewrite ``cohort.csv``."""
        _insert(self.rows, self._row_keys, cohort_row(name, summary), index)
        write_text(self.out_dir / COHORT_CSV, _csv_text(COHORT_COLUMNS, self.rows))

    def fail(self, failure: Failure, index: int | None = None) -> None:
        """Record an input that could not be predicted and rewrite ``failures.csv``."""
        _insert(self.failures, self._failure_keys, failure, index)
        rows = [{"slide": f.slide, "error": f.error, "fix": f.fix} for f in self.failures]
        write_text(self.out_dir / FAILURES_CSV, _csv_text(FAILURE_COLUMNS, rows))

    def remove_stale(self) -> list[Path]:
        """Delete the temporary files a killed run left while rewriting ``cohort.csv`` or ``failures.csv``
        (``.cohort.XXXXXXXX.tmp.csv``); returns them. Only for an output folder one job writes at a time."""
        return remove_atomic_temporaries(self.out_dir, [Path(t).stem for t in (COHORT_CSV, FAILURES_CSV)])

    def finish(self) -> None:
        """A run without failures removes the ``failures.csv`` an earlier run left (it is no longer true)."""
        if not self.failures:
            (self.out_dir / FAILURES_CSV).unlink(missing_ok=True)


def _insert(items: list[Any], keys: list[int], item: Any, index: int | None) -> None:
    """Insert ``item`` after every item whose key is at most ``index`` (None: -1, before indexed items)."""
    key = -1 if index is None else index
    at = bisect.bisect_right(keys, key)
    keys.insert(at, key)
    items.insert(at, item)


def failure_from(path: Path, exc: BaseException) -> Failure:
    """A failures.csv row for ``exc`` raised while predicting ``path``."""
    if isinstance(exc, DataError):
        fix = exc.fix or "fix or remove this input and run again with --resume"
        return Failure(str(path), str(exc).split(". Fix: ")[0].rstrip("."), fix)
    return Failure(
        str(path),
        f"{type(exc).__name__}: {exc}",
        "check that the file opens in QuPath; fix or remove it and run again with --resume",
    )
