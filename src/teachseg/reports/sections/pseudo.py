"""The pseudo-labels section: a table of every pseudo-label set, then sample figures."""

from __future__ import annotations

from teachseg.reports.document import Section
from teachseg.reports.runs import ExperimentEntry
from teachseg.reports.sections.common import entry_name
from teachseg.reports.sections.results import ArchResults
from teachseg.reports.tables.summary import pseudo_stats_table


def pseudo_section(entries: list[ExperimentEntry], groups: list[ArchResults]) -> Section:
    """Statistics of every run's sets (in ``entries`` order), samples of each architecture's first seed."""
    sec = Section("pseudo", "Pseudo-labels")
    table = pseudo_stats_table([(entry_name(e), e.run) for e in entries if e.run is not None])
    if table:
        sec.blocks.append(table)
    for g in groups:
        sec.blocks += g.pseudo
    return sec
