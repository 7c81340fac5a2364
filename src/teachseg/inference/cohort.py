"""A cohort of slides on one machine: inputs from files, folders and path lists; per-slide failures and a table.

``DIR/cohort.csv`` (one row per predicted or already-finished input, naming the model and the prediction's
identity) and ``DIR/failures.csv`` (one row per input that could not be predicted, with the fix) are
rewritten atomically after every slide, so a killed run leaves both up to date with the slides it finished.
A row of ``failures.csv`` stays, whatever later runs do, until its input is predicted.
"""

from __future__ import annotations

import bisect
import contextlib
import csv
import io
import os
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
    "tumour_in_tissue_mm2",
    "tumour_fraction",
    "seconds",
    "model",
    "weights_sha256",
    "identity",
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
    """One ``cohort.csv`` row from a summary (areas in mm^2, empty when the resolution is unknown; the
    fraction is of the tissue for slides, of the image for ordinary images)."""
    fraction = summary.get("tumour_fraction_of_tissue", summary.get("tumour_fraction"))
    model = summary.get("model") or {}
    return {
        "slide": summary.get("input", ""),
        "name": name,
        "mpp_used": summary.get("mpp_used"),
        "mpp_source": summary.get("mpp_source"),
        "tissue_area_mm2": summary.get("tissue_area_mm2"),
        "tumour_area_mm2": summary.get("tumour_area_mm2"),
        "tumour_in_tissue_mm2": summary.get("tumour_in_tissue_area_mm2"),
        "tumour_fraction": fraction,
        "seconds": summary.get("seconds"),
        "model": model.get("folder"),
        "weights_sha256": model.get("weights_sha256"),
        "identity": summary.get("identity"),
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
    order); rows without an index (listed paths that do not exist) come first. The rows of an earlier
    ``failures.csv`` stay (before this run's) until this run predicts their input or records it failing
    again.
    """

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self.rows: list[dict[str, Any]] = []
        self.failures: list[Failure] = []
        self._row_keys: list[int] = []
        self._failure_keys: list[int] = []
        self._earlier = read_failures(out_dir / FAILURES_CSV)
        self._settled: set[str] = set()

    def add(
        self, name: str, summary: dict[str, Any], index: int | None = None, slide: str | Path | None = None
    ) -> None:
        """Add the row of a predicted slide (input number ``index``, path ``slide``: default, the summary's
        ``input``) and rewrite ``cohort.csv`` (and ``failures.csv``, when an earlier row of it goes)."""
        _insert(self.rows, self._row_keys, cohort_row(name, summary), index)
        write_text(self.out_dir / COHORT_CSV, _csv_text(COHORT_COLUMNS, self.rows))
        if self._settle(str(summary.get("input", "") if slide is None else slide)):
            self._write_failures()

    def fail(self, failure: Failure, index: int | None = None) -> None:
        """Record an input that could not be predicted and rewrite ``failures.csv``."""
        self._settle(failure.slide)
        _insert(self.failures, self._failure_keys, failure, index)
        self._write_failures()

    @property
    def earlier_failures(self) -> list[Failure]:
        """The rows of an earlier run's ``failures.csv`` whose input this run has not predicted."""
        return [f for f in self._earlier if _input_key(f.slide) not in self._settled]

    def _settle(self, slide: str) -> bool:
        """This run decided ``slide``; True when an earlier row of it is to go."""
        key = _input_key(slide)
        earlier = any(_input_key(f.slide) == key for f in self.earlier_failures)
        self._settled.add(key)
        return earlier

    def _write_failures(self) -> None:
        rows = [
            {"slide": f.slide, "error": f.error, "fix": f.fix} for f in self.earlier_failures + self.failures
        ]
        if rows:
            write_text(self.out_dir / FAILURES_CSV, _csv_text(FAILURE_COLUMNS, rows))
        else:
            (self.out_dir / FAILURES_CSV).unlink(missing_ok=True)

    def remove_stale(self) -> list[Path]:
        """Delete the temporary files a killed run left while rewriting ``cohort.csv`` or ``failures.csv``
        (``.cohort.XXXXXXXX.tmp.csv``); returns them. Only for an output folder one job writes at a time."""
        return remove_atomic_temporaries(self.out_dir, [Path(t).stem for t in (COHORT_CSV, FAILURES_CSV)])

    def finish(self) -> None:
        """Bring ``failures.csv`` up to date: the rows of this run's failures and of earlier failures whose
        input was not predicted since; removed when there are none."""
        self._write_failures()


def read_failures(path: Path) -> list[Failure]:
    """The rows of an earlier ``failures.csv`` ([] when there is none, or it cannot be read as one)."""
    with (
        contextlib.suppress(OSError, UnicodeDecodeError, csv.Error),
        path.open(newline="", encoding="utf-8") as f,
    ):
        rows = list(csv.DictReader(f))
        return [Failure(r["slide"], r.get("error") or "", r.get("fix") or "") for r in rows if r.get("slide")]
    return []


def _input_key(slide: str) -> str:
    """An input path as one key whatever way it was written (relative, with ``~``)."""
    return os.path.abspath(os.path.expanduser(slide))


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
