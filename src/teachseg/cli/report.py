"""CLI command: ``teachseg report RUN_DIR [--out DIR]``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from teachseg.cli._app import app, console, out

RunDirArg = Annotated[
    Path,
    typer.Argument(help="Folder written by teachseg train, selftrain or experiment.", show_default=False),
]
ReportOutOpt = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="Report folder (default: RUN_DIR/report).", show_default=False),
]


@app.command("report")
def report(run_dir: RunDirArg, out_dir: ReportOutOpt = None) -> None:
    """Rebuild tables, figures and report.html from a run folder's files alone; print the report path."""
    from rich.markup import escape

    from teachseg.reports import build_report_with_warnings

    result = build_report_with_warnings(run_dir, out_dir)
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(w)}", highlight=False, markup=True, soft_wrap=True)
    if result.warnings:
        console.print(
            f"{len(result.warnings)} problem(s) with the run files; the report shows what could be read.",
            highlight=False,
        )
    for note in result.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, markup=True, soft_wrap=True)
    out.print(str(result.html), highlight=False, soft_wrap=True)
