"""Per-architecture sections: Teacher and Student findings per seed and their comparison (Tables 2-7)."""

from __future__ import annotations

from teachseg.reports.document import Section
from teachseg.reports.sections.results import ArchResults
from teachseg.reports.tables.study import arch_label, comparison_table, findings_table


def seed_sections(groups: list[ArchResults]) -> list[Section]:
    """One section per architecture: Teacher findings, Student findings, Teacher-vs-Student comparison."""
    out = []
    for g in groups:
        sec = Section(f"arch-{g.arch}", f"{arch_label(g.arch)} results")
        sec.blocks.append(
            findings_table(g.arch, "Teacher", [(s, t) for s, t, _, _ in g.pairs], key=f"{g.arch}_teacher")
        )
        sec.blocks.append(
            findings_table(g.arch, "Student", [(s, st) for s, _, st, _ in g.pairs], key=f"{g.arch}_student")
        )
        sec.blocks.append(comparison_table(g.arch, g.pairs, key=f"{g.arch}_comparison"))
        out.append(sec)
    return out
