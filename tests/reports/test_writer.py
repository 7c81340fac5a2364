"""Writing a report folder: file names safe and unique, every table in every format."""

from __future__ import annotations

from pathlib import Path

from teachseg.reports.document import Figure, Report, Section
from teachseg.reports.tables.model import Table
from teachseg.reports.writer import write_report


def test_unsafe_and_repeated_keys_get_unique_safe_file_names(tmp_path: Path):
    tables = [Table(key="run/<1>", title="T", columns=["A"], rows=[["x"]]) for _ in range(2)]
    fig = Figure(key="run/<1>", title="F", caption="", png=b"\x89PNG fake")
    rep = Report(
        kind="train", title="R", run_dir=tmp_path, sections=[Section("s", "S", blocks=[*tables, fig])]
    )
    html = write_report(rep, tmp_path / "report")
    assert html == tmp_path / "report" / "report.html" and html.is_file()
    names = sorted(p.name for p in (tmp_path / "report" / "tables").iterdir())
    assert names == [f"run_1{s}.{e}" for s in ("", "_2") for e in ("csv", "md", "tex")]
    assert [p.name for p in (tmp_path / "report" / "figures").iterdir()] == ["run_1_3.png"]
    assert (tmp_path / "report" / "tables.md").read_text().count("**T**") == 2
    assert not (tmp_path / "report" / "warnings.txt").exists()
    assert not list(tmp_path.glob(".report.tmp-*"))  # the staging folder was swapped into place
