"""Paper-ready reports from run folders: tables (CSV, Markdown, LaTeX), figures (PNG) and one HTML page.

Example:
    >>> from teachseg.reports import build_report
    >>> build_report(Path("runs/busi_experiment"))  # doctest: +SKIP
    PosixPath('runs/busi_experiment/report/report.html')

Importing this package is cheap; numpy, scipy, matplotlib and Jinja2 load when a report is built.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ReportResult", "build_report", "build_report_with_warnings"]


class ReportResult:
    """Where the report was written, the problems met while reading the run folder, and the caveats the
    report shows prominently (e.g. a Teacher-vs-Student comparison on validation images: selection-biased)."""

    def __init__(self, html: Path, warnings: list[str], notes: list[str] | None = None):
        self.html = html
        self.folder = html.parent
        self.warnings = warnings
        self.notes = notes or []


def build_report_with_warnings(run_dir: str | Path, out: str | Path | None = None) -> ReportResult:
    """Like :func:`build_report`, also returning the warnings (missing or corrupt files)."""
    from teachseg.reports.build import assemble
    from teachseg.reports.readers import Warnings
    from teachseg.reports.writer import write_report

    run_dir = Path(run_dir)
    warn = Warnings()
    rep = assemble(run_dir, warn)
    html = write_report(rep, Path(out) if out is not None else run_dir / "report")
    return ReportResult(html, list(warn), [s.alert for s in rep.sections if s.alert])


def build_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Build the report of an experiment, self-training run or training run folder.

    The folder kind is detected from its files. Missing or corrupt files are skipped (listed in the report
    and in ``warnings.txt``); :class:`teachseg.errors.DataError` is raised only when nothing usable exists.

    Args:
        run_dir: the folder written by ``teachseg train``, ``selftrain`` or ``experiment``.
        out: the report folder (default ``run_dir/report``); replaced as a whole when rebuilt.

    Returns:
        The path of ``report.html`` inside the report folder.
    """
    return build_report_with_warnings(run_dir, out).html
