"""The Dice-per-class section: per-image Dice distributions by class, as figures and tables."""

from __future__ import annotations

from teachseg.reports.document import Figure, Section
from teachseg.reports.runs import TrainRun
from teachseg.reports.sections.common import class_series, dice_by_class
from teachseg.reports.sections.results import ArchResults
from teachseg.reports.tables.paired import SELECTION_BIASED, selection_biased
from teachseg.reports.tables.study import arch_label
from teachseg.reports.tables.summary import per_class_table


def study_distribution_section(groups: list[ArchResults]) -> Section:
    """Teacher and Student per architecture, on the paired split, each image averaged over seeds."""
    from teachseg.reports.figures import dice_distribution_figure

    sec = Section("distribution", "Dice per class")
    for g in groups:
        series = {k: class_series(v, g.classes) for k, v in g.dice.items() if any(len(d) for d in v)}
        if not series:
            continue
        where = f"{g.split} split" + (f", {SELECTION_BIASED}" if selection_biased(g.split) else "")
        label = arch_label(g.arch)
        title = f"Per-image Dice by class – {label}"
        sec.blocks.append(
            Figure(
                f"dice_by_class_{g.arch}",
                title,
                f"Teacher and Student on the paired split ({where}), each image averaged over seeds.",
                dice_distribution_figure(series, title),
            )
        )
        sec.blocks.append(
            per_class_table(
                series,
                key=f"{g.arch}_per_class",
                title=f"{label}: per-image Dice per class ({where}, images averaged over seeds)",
            )
        )
    return sec


def train_distribution_section(run: TrainRun, split: str) -> Section:
    """The model's per-image Dice by class on ``split``."""
    from teachseg.reports.figures import dice_distribution_figure

    title = f"Per-image Dice by class ({split} split)"
    png = dice_distribution_figure({"Model": dice_by_class(run.per_image[split])}, title)
    return Section("distribution", "Dice per class", blocks=[Figure("dice_by_class", title, "", png)])
