"""The predictions section: fixed and best examples overlaid on their images (worst ones: worst-cases section)."""

from __future__ import annotations

from teachseg.reports.document import Figure, Section
from teachseg.reports.sections.examples import is_worst
from teachseg.reports.sections.results import ArchResults

LEGEND = "Error map colours: true positive, false positive, false negative (Okabe–Ito palette)."


def study_predictions_section(groups: list[ArchResults]) -> Section:
    """The first seed's reported model of each architecture."""
    sec = Section("overlays", "Predictions", LEGEND)
    for g in groups:
        sec.blocks += [f for f in g.examples if not is_worst(f)]
    return sec


def train_predictions_section(examples: list[Figure]) -> Section:
    """The examples of a single training run."""
    return Section("overlays", "Predictions", blocks=[f for f in examples if not is_worst(f)])
