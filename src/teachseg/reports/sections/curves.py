"""The training-curves section: loss and validation Dice per epoch, one figure per run."""

from __future__ import annotations

from teachseg.reports.document import Figure, Section
from teachseg.reports.runs import TrainRun
from teachseg.reports.sections.common import entry_name
from teachseg.reports.sections.results import ArchResults


def curves_figure(name: str, gens: dict[int, TrainRun], key: str) -> Figure | None:
    """Every generation's curves in one figure (None when no generation logged metrics)."""
    from teachseg.reports.figures import curves_figure as draw

    series = [
        (("Teacher" if g == 0 else f"Student gen{g}"), r.metrics)
        for g, r in sorted(gens.items())
        if r.metrics
    ]
    if not series:
        return None
    title = f"Training curves – {name}"
    return Figure(
        key=key,
        title=title,
        caption="Training and validation loss, and validation Dice per epoch.",
        png=draw(series, title),
    )


def study_curves_section(groups: list[ArchResults]) -> Section:
    """Teacher and Student(s) of each run of a study."""
    sec = Section("curves", "Training curves", "Teacher and Student(s) of each run, per epoch.")
    for g in groups:
        for e in g.entries:
            assert e.run is not None
            fig = curves_figure(entry_name(e), e.run.generations, f"curves_{e.dir}")
            if fig:
                sec.blocks.append(fig)
    return sec


def train_curves_section(run: TrainRun) -> Section:
    """The curves of a single training run."""
    sec = Section("curves", "Training curves")
    fig = curves_figure(run.name, {0: run}, "curves")
    if fig:
        sec.blocks.append(fig)
    return sec
