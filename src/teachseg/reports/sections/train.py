"""The results section of a single training run: its summary row and Dice per class."""

from __future__ import annotations

from teachseg.reports.document import Section
from teachseg.reports.runs import TrainRun
from teachseg.reports.sections.common import dice_by_class
from teachseg.reports.tables.summary import per_class_table, run_summary_table


def train_results_section(run: TrainRun) -> Section:
    """Run summary, then per-class Dice on the evaluated split (when there is one)."""
    sec = Section("results", "Results")
    sec.blocks.append(run_summary_table([(run.name, run)]))
    split = run.eval_split
    if split:
        per = dice_by_class(run.per_image[split])
        sec.blocks.append(
            per_class_table({"Model": per}, key="per_class", title=f"Dice per class ({split} split)")
        )
    return sec
