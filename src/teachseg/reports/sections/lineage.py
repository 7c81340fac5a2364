"""The lineage section: every generation of each run and why it was kept or rejected."""

from __future__ import annotations

from teachseg.reports.document import Section
from teachseg.reports.runs import ExperimentEntry
from teachseg.reports.sections.common import entry_name
from teachseg.reports.tables.summary import lineage_table


def lineage_section(entries: list[ExperimentEntry]) -> Section:
    """One lineage table per run, in ``entries`` order."""
    sec = Section("lineage", "Lineage", "Every generation of each seed and why it was kept or rejected.")
    for e in entries:
        assert e.run is not None
        sec.blocks.append(
            lineage_table(
                e.run.lineage, e.run.generations, key=f"lineage_{e.dir}", title=f"Lineage – {entry_name(e)}"
            )
        )
    return sec
