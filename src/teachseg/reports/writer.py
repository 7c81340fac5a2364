"""Write a :class:`~teachseg.reports.document.Report` to disk, atomically: a staging folder swapped into place.

The layout of the written folder::

    report/report.html          one self-contained page (figures inlined as data URIs)
    report/tables/<key>.{csv,md,tex}
    report/tables.md, tables.tex  every table in one file, for papers
    report/figures/<key>.png
    report/warnings.txt         the missing or corrupt files (only when there are any)
"""

from __future__ import annotations

import glob
import os
import re
import shutil
from pathlib import Path

from teachseg.errors import OutputError
from teachseg.reports.document import Report
from teachseg.reports.tables.render import to_csv, to_latex, to_markdown


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise OutputError("exists and is not a folder", path=out, fix="give --out a folder path")
    if out.is_dir() and any(out.iterdir()) and not (out / "report.html").exists():
        raise OutputError(
            "folder is not empty and holds no earlier report; refusing to replace it",
            path=out,
            fix="give --out an empty or new folder",
        )


def _file_key(key: str, used: set[str]) -> str:
    """A file-system-safe, unique file stem (keys carry run folder names from experiment.json)."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("._")[:80] or "item"
    out, i = base, 2
    while out.lower() in used:
        out, i = f"{base}_{i}", i + 1
    used.add(out.lower())
    return out


def write_report(rep: Report, out: Path) -> Path:
    """Write every output into a staging folder, then swap it into place (no half-written report)."""
    from teachseg.io import ensure_writable_dir, replace_dir, write_bytes, write_text
    from teachseg.reports.html import render_html

    _check_out(out)
    ensure_writable_dir(out.parent)
    stage = out.parent / f".{out.name}.tmp-{os.getpid()}"
    # this run's stage, and those of killed earlier runs (another PID), never swapped into place
    for old in out.parent.glob(f".{glob.escape(out.name)}.tmp-*"):
        shutil.rmtree(old, ignore_errors=True)
    stage.mkdir(parents=True)
    try:
        md, tex = [], []
        used: set[str] = set()
        for t in rep.tables():
            t.key = _file_key(t.key, used)
            write_text(stage / "tables" / f"{t.key}.csv", to_csv(t))
            md.append(to_markdown(t))
            tex.append(to_latex(t))
            write_text(stage / "tables" / f"{t.key}.md", md[-1])
            write_text(stage / "tables" / f"{t.key}.tex", tex[-1])
        write_text(stage / "tables.md", f"# {rep.title}\n\n" + "\n".join(md))
        write_text(stage / "tables.tex", "% needs \\usepackage{booktabs}\n" + "\n".join(tex))
        for f in rep.figures():
            f.key = _file_key(f.key, used)
            write_bytes(stage / "figures" / f"{f.key}.png", f.png)
        if len(rep.warnings):
            write_text(stage / "warnings.txt", "\n".join(rep.warnings) + "\n")
        write_text(stage / "report.html", render_html(rep))
        for p in stage.rglob("*"):  # mkstemp creates 0600 files; a report is meant to be shared
            p.chmod(0o755 if p.is_dir() else 0o644)
        replace_dir(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return out / "report.html"
