"""Render a :class:`~teachseg.reports.document.Report` as one self-contained, escaped HTML page."""

from __future__ import annotations

import base64
import datetime as _dt
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from teachseg.reports.document import Report
from teachseg.reports.tables.model import Interval, Table, fmt

TEMPLATES = Path(__file__).parent / "templates"
PACKAGES = ("teachseg", "torch", "segmentation-models-pytorch", "lightning", "numpy", "scipy", "matplotlib")


def package_versions() -> dict[str, str]:
    """Installed versions, read from package metadata (nothing heavy is imported)."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit(cwd: Path | None = None) -> str:
    """The checked-out commit of ``cwd``'s repository, or ``unknown``."""
    try:
        res = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    sha = res.stdout.strip()
    return sha if res.returncode == 0 and sha else "unknown"


def data_uri(png: bytes) -> str:
    """PNG bytes as an inline ``data:`` URI."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,  # every value from a run folder is untrusted text
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = fmt
    env.filters["data_uri"] = data_uri
    env.tests["table"] = lambda b: isinstance(b, Table)
    env.tests["interval"] = lambda c: isinstance(c, Interval)
    return env


def render_html(rep: Report) -> str:
    """The report as one page: tables, inlined figures, setup, config and how to reproduce it."""
    config_text = (
        yaml.safe_dump(rep.config, sort_keys=False, allow_unicode=True)
        if rep.config
        else "(no config.yaml found)"
    )
    return str(
        _environment()
        .get_template("report.html.j2")
        .render(
            rep=rep,
            config_text=config_text,
            versions=package_versions(),
            commit=git_commit(),
            generated=_dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
            rebuild=f"teachseg report {rep.run_dir}",
        )
    )
