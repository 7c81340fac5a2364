"""The "What to annotate next" section: the suggestions ``teachseg suggest`` wrote into the run folder.

Read from the files alone (``suggest.json``, ``suggestions.csv``, ``contact_sheet.png`` of every folder
directly inside the run folder that holds a ``suggest.json``, usually ``suggestions/``): nothing is predicted
while a report is built, so it stays fast. A run never given to ``suggest`` has no such section.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from teachseg.reports.document import Figure, Section
from teachseg.reports.readers import Warnings, read_json
from teachseg.reports.tables.model import Table, number
from teachseg.suggest.outputs import CONTACT_SHEET, SUGGEST_JSON, SUGGESTIONS_CSV

#: rows of the table (the CSV has them all)
MAX_ROWS = 20


def _rows(path: Path, warn: Warnings) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        warn.add(path, f"cannot be read, skipped ({type(exc).__name__})")
        return []


def _float(text: str | None) -> float | None:
    try:
        return number(float(text)) if text not in (None, "") else None
    except ValueError:
        return None


def _intro(meta: dict[str, Any], shown: int) -> str:
    models = ", ".join(str(m.get("role")) for m in meta.get("models") or [] if isinstance(m, dict))
    excluded = meta.get("excluded") or {}
    left = "; ".join(f"{len(v)} {k}" for k, v in excluded.items() if isinstance(v, list))
    s = meta.get("settings") or {}
    what = "tissue regions" if meta.get("slides") else "images"
    return (
        f"teachseg suggest chose {meta.get('budget')} of {meta.get('pool')} unlabelled {what}"
        f"{f' ({left} left out)' if left else ''} by the {models or 'model'}'s uncertainty over flip views"
        f"{' and Teacher-Student disagreement' if len(meta.get('models') or []) > 1 else ''} on uncertain "
        f"tumour-like regions (mean probability {s.get('band')}, area exponent {s.get('area_exponent')}), "
        f"spread by the encoder's features (diversity {s.get('diversity')}), seed {meta.get('seed')}. "
        f"Never a held-out image or a duplicate of an image with a mask. "
        f"{'The first ' + str(shown) + ' are listed; ' if shown < int(meta.get('budget') or 0) else ''}"
        f"{SUGGESTIONS_CSV} has them all."
    )


def suggest_section(run_dir: Path, warn: Warnings) -> Section:
    """The section (empty when the run folder holds no suggestions)."""
    sec = Section("suggest", "What to annotate next")
    folders = sorted(p.parent for p in Path(run_dir).glob(f"*/{SUGGEST_JSON}"))
    for folder in folders:
        meta = read_json(folder / SUGGEST_JSON, warn)
        if not isinstance(meta, dict):
            continue
        rows = _rows(folder / SUGGESTIONS_CSV, warn)
        if not rows:
            continue
        table = Table(
            key=f"suggestions_{folder.name}",
            title=f"Suggestions ({folder.name}/{SUGGESTIONS_CSV})",
            columns=[
                "Rank",
                "Image",
                "Score",
                "Informativeness",
                "Uncertainty",
                "Uncertain area",
                "Diversity",
            ],
        )
        for r in rows[:MAX_ROWS]:
            table.rows.append(
                [
                    int(r["rank"]) if str(r.get("rank", "")).isdigit() else r.get("rank"),
                    r.get("id") or r.get("image"),
                    *(
                        _float(r.get(k))
                        for k in ("score", "informativeness", "uncertainty", "uncertain_area", "diversity")
                    ),
                ]
            )
        sec.intro = sec.intro or _intro(meta, min(len(rows), MAX_ROWS))
        sec.blocks.append(table)
        sheet = folder / CONTACT_SHEET
        if sheet.is_file():
            sec.blocks.append(
                Figure(
                    key=f"contact_sheet_{folder.name}",
                    title="Suggested images with the model's uncertainty",
                    caption="Each suggestion with the spread of its predictions over flip views (and Teacher and "
                    "Student) in red: the redder, the less the members agree. Rank and score below.",
                    png=sheet.read_bytes(),
                )
            )
    return sec
