"""The worst-cases section: the images with the lowest Dice, as a table and an overlay figure."""

from __future__ import annotations

from teachseg.reports.document import Figure, Section
from teachseg.reports.runs import TrainRun
from teachseg.reports.sections.common import N_WORST, by_dice
from teachseg.reports.sections.examples import is_worst
from teachseg.reports.sections.results import ArchResults
from teachseg.reports.tables.summary import worst_table


def study_worst_section(groups: list[ArchResults]) -> Section:
    """The lowest-Dice images over every run's reported model; the worst overlays of each architecture."""
    rows = [row for g in groups for row in g.worst]
    rows.sort(key=lambda t: (t[2]["dice"], t[0], str(t[2]["id"])))
    sec = Section("worst", "Worst cases", blocks=[worst_table(rows[:N_WORST])])
    for g in groups:
        sec.blocks += [f for f in g.examples if is_worst(f)]
    return sec


def train_worst_section(run: TrainRun, split: str, examples: list[Figure]) -> Section:
    """The lowest-Dice images of a single training run on ``split``."""
    rows = [(run.name, split, r) for r in by_dice(run.per_image[split])[:N_WORST]]
    return Section("worst", "Worst cases", blocks=[worst_table(rows)] + [f for f in examples if is_worst(f)])
