"""The Teacher-versus-Student section: paired per-image Dice differences per seed, architecture and overall."""

from __future__ import annotations

from typing import Any

from teachseg.reports.document import Section
from teachseg.reports.sections.common import joined_split
from teachseg.reports.sections.results import ArchResults
from teachseg.reports.stats import mean_per_image, paired_test
from teachseg.reports.tables.paired import paired_table, selection_biased
from teachseg.reports.tables.study import arch_label

INTRO = (
    "Does the Student beat the Teacher on the same images? Images (n) is the number of independent "
    "images: each image's difference is averaged over seeds before the bootstrap interval and the "
    "Wilcoxon test, so repeated seeds never count as extra images."
)
SELECTION_BIAS_ALERT = (
    "Selection-biased comparison: without a test split, Teacher and Student are compared on the "
    "validation images that chose their best epochs and whether the Student replaced the Teacher, "
    "so the rows marked selection-biased are optimistic. Set data.test_fraction (e.g. 0.2) and run "
    "again for an unbiased comparison on held-out test images."
)


def paired_section(groups: list[ArchResults]) -> Section:
    """Rows per seed, then per architecture over its seeds, then overall (over architectures)."""
    rows: list[tuple[str, str, str, str, Any]] = []
    arch_means: list[dict[str, float]] = []  # per architecture: each image's difference averaged over seeds
    all_splits: set[str] = set()
    for g in groups:
        label = arch_label(g.arch)
        rows += [(label, str(p.seed), p.split, p.chosen, paired_test(p.diffs)) for p in g.seed_pairs]
        arch_mean = g.mean_diffs()
        if arch_mean:
            arch_means.append(arch_mean)
            all_splits |= {p.split for p in g.seed_pairs}
        if len(g.entries) > 1 or len(groups) > 1:
            seeds = ", ".join(str(e.seed) for e in g.entries)
            rows.append((f"{label} (all seeds)", seeds, g.split or "–", "as above", paired_test(arch_mean)))
    all_split = joined_split(all_splits)
    if len(groups) > 1:
        rows.append(("Overall", "all", all_split or "–", "as above", paired_test(mean_per_image(arch_means))))
    sec = Section("paired", "Teacher versus Student", INTRO)
    if selection_biased(all_split):
        sec.alert = SELECTION_BIAS_ALERT
    sec.blocks.append(paired_table(rows))
    return sec
