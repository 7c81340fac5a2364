"""What a ``predict`` output folder holds, as the viewer shows it: one entry per predicted input.

Each ``NAME_summary.json`` is one entry (slide or image), ordered as in ``cohort.csv`` where there is one;
the tumour areas come from ``cohort.csv`` (else from the summary) and the inputs that failed from
``failures.csv``. An output file is only ever taken from inside the folder: the names a summary lists are
bare file names, and a name that climbs out (``..``), is absolute, or is a link leading out is refused.
The slide itself lives elsewhere (where ``predict`` read it); the viewer serves tiles derived from it, never
the file.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from teachseg.errors import DataError
from teachseg.inference.cohort import COHORT_CSV, FAILURES_CSV
from teachseg.runfiles import PredictSummary, RunFileError

SUMMARY_ENDING = "_summary.json"
PREDICT_FIX = "run `teachseg predict MODEL_DIR SLIDE... --out DIR` first, then `teachseg view DIR`"


@dataclass
class Entry:
    """One predicted input of the folder: its outputs (inside the folder) and where its slide is.

    ``problem`` says, in the page and in the log, why something cannot be shown (the slide moved since the
    prediction, a summary that does not read, an output missing).
    """

    id: int
    name: str
    summary: PredictSummary | None = None
    slide: Path | None = None
    probability: Path | None = None
    outlines: Path | None = None
    row: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def mpp(self) -> float | None:
        """Level-0 micrometres per pixel as ``predict`` used it (None when unknown)."""
        mpp = self.summary.mpp if self.summary else None
        return float(mpp) if mpp else None

    def tumour_area_mm2(self) -> float | None:
        """The tumour area in mm^2: ``cohort.csv``'s figure, else the summary's (None when unknown)."""
        value = _number(self.row.get("tumour_area_mm2"))
        if value is None and self.summary is not None:
            value = _number(self.summary.tumour_area_mm2)
        return value

    def to_json(self) -> dict[str, Any]:
        """What the page's slide list shows of this entry."""
        s = self.summary
        fraction = _number(self.row.get("tumour_fraction"))
        if fraction is None and s is not None:
            extra = s.model_extra or {}
            fraction = _number(extra.get("tumour_fraction_of_tissue", s.tumour_fraction))
        return {
            "id": self.id,
            "name": self.name,
            "kind": s.kind if s else None,
            "width": s.width if s else None,
            "height": s.height if s else None,
            "mpp": self.mpp,
            "threshold": _number(s.threshold) if s else None,
            "tumour_area_mm2": self.tumour_area_mm2(),
            "tumour_area_px": _number(s.tumour_area_px) if s else None,
            "tumour_fraction": fraction,
            "slide_found": self.slide is not None,
            "problems": list(self.problems),
        }


@dataclass
class Catalog:
    """The entries of an output folder, the inputs ``predict`` could not read, and what went wrong reading."""

    folder: Path
    entries: list[Entry]
    failures: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def load_catalog(folder: Path, slide_dir: Path | None = None) -> Catalog:
    """Read the ``predict`` outputs in ``folder``; slides not where the summary says are looked for in
    ``slide_dir`` (by file name).

    Raises:
        DataError: when ``folder`` does not exist or holds no ``NAME_summary.json``.
    """
    if not folder.is_dir():
        raise DataError("prediction folder not found", path=folder, fix=PREDICT_FIX)
    names = [
        p.name[: -len(SUMMARY_ENDING)]
        for p in sorted(folder.glob(f"*{SUMMARY_ENDING}"))
        if not p.name.startswith(".") and len(p.name) > len(SUMMARY_ENDING)
    ]
    if not names:
        raise DataError(
            "no prediction outputs here (no NAME_summary.json, which `teachseg predict` writes per slide)",
            path=folder,
            fix=PREDICT_FIX,
        )
    warnings: list[str] = []
    rows = {r.get("name", ""): r for r in _read_csv(folder / COHORT_CSV, warnings)}
    order = {name: i for i, name in enumerate(rows)}
    names.sort(key=lambda n: (order.get(n, len(order)), n))
    entries = [_entry(i, name, folder, rows.get(name, {}), slide_dir) for i, name in enumerate(names)]
    for e in entries:
        warnings.extend(f"{e.name}: {p}" for p in e.problems)
    return Catalog(folder, entries, _read_csv(folder / FAILURES_CSV, warnings), warnings)


def _entry(index: int, name: str, folder: Path, row: dict[str, str], slide_dir: Path | None) -> Entry:
    entry = Entry(index, name, row=row)
    try:
        entry.summary = PredictSummary.read(folder / f"{name}{SUMMARY_ENDING}")
    except RunFileError as exc:
        entry.problems.append(f"its summary cannot be read: {exc.message}")
        return entry
    outputs = entry.summary.outputs
    entry.probability = output_file(folder, outputs.get("probability"), entry.problems, "probability map")
    if entry.summary.kind == "slide":
        entry.outlines = output_file(folder, outputs.get("geojson"), entry.problems, "GeoJSON outlines")
    entry.slide = locate_slide(entry.summary.input, slide_dir)
    if entry.slide is None:
        recorded = Path(entry.summary.input)
        where, fix = "", f"move it back, or give --slide-dir FOLDER holding {recorded.name}"
        if not recorded.is_absolute():
            where = " (a path relative to where `teachseg predict` ran)"
            fix = f"run `teachseg view` where predict ran, or {fix}"
        entry.problems.append(
            f"slide not found at {recorded}{where}, moved or deleted since the prediction; the page shows the "
            f"probability map and outlines without it. Fix: {fix}"
        )
    return entry


def output_file(folder: Path, name: str | None, problems: list[str], what: str) -> Path | None:
    """``folder/name`` when ``name`` is a bare file name of a file inside ``folder`` (links resolved), else
    None with the reason appended to ``problems``."""
    if not name:
        problems.append(f"the summary lists no {what}")
        return None
    if Path(name).name != name or name in (".", "..") or "\\" in name:
        problems.append(f"the summary's {what} {name!r} is not a file name in this folder; not served")
        return None
    path = folder / name
    if not path.exists():
        problems.append(f"{what} {name} is missing; rerun `teachseg predict ... --resume`")
        return None
    if not is_inside(folder, path):
        problems.append(f"{what} {name} leads outside the folder (a link?); not served")
        return None
    return path.resolve()


def is_inside(folder: Path, path: Path) -> bool:
    """Whether ``path``, links followed, is a file directly inside ``folder`` (checked again at each use, so a
    file swapped for a link after the start is not followed out)."""
    try:
        resolved = path.resolve(strict=True)
        return resolved.parent == folder.resolve(strict=True) and resolved.is_file()
    except (OSError, RuntimeError):
        return False


def locate_slide(recorded: str, slide_dir: Path | None = None) -> Path | None:
    """The slide file ``predict`` read: the recorded path (relative to the working folder when relative), else
    the file of that name in ``slide_dir``; None when neither exists."""
    candidates = [Path(recorded).expanduser()]
    if slide_dir is not None:
        candidates.append(slide_dir / Path(recorded).name)
    found = next((p for p in candidates if p.is_file()), None)
    return None if found is None else found.absolute()


def _read_csv(path: Path, warnings: list[str]) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    try:
        with path.open(newline="", encoding="utf-8") as f:
            return [dict(r) for r in csv.DictReader(f)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        warnings.append(f"{path}: cannot be read ({type(exc).__name__}); its figures are not shown")
        return []


def _number(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if v == v and abs(v) != float("inf") else None
