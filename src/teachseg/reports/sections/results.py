"""A self-training study's results per architecture, gathered once and shared by the section builders.

Experiments and single self-training runs are both read as a list of
:class:`~teachseg.reports.runs.ExperimentEntry` (one per architecture and seed).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from teachseg.reports.document import Figure
from teachseg.reports.readers import Warnings
from teachseg.reports.runs import Experiment, ExperimentEntry, SelfTrainRun, TrainRun
from teachseg.reports.sections.common import (
    N_WORST,
    by_dice,
    class_of,
    common_split,
    dice_by_image,
    entry_name,
    joined_split,
)
from teachseg.reports.sections.examples import overlay_figures, pseudo_figures
from teachseg.reports.stats import image_diffs, mean_per_image

WorstRow = tuple[str, str, dict[str, Any]]  # run name, split, per-image row


@dataclass
class SeedPair:
    """One seed's Teacher and (chosen) Student, compared image by image on ``split``."""

    seed: int | None
    split: str
    chosen: str
    diffs: dict[str, float]  # image id -> Student Dice - Teacher Dice


@dataclass
class ArchResults:
    """Everything the report shows about one architecture, its seeds in ascending order."""

    arch: str
    entries: list[ExperimentEntry]
    pairs: list[tuple[int | None, TrainRun | None, TrainRun | None, str]] = field(default_factory=list)
    seed_pairs: list[SeedPair] = field(default_factory=list)
    dice: dict[str, list[dict[str, float]]] = field(
        default_factory=lambda: {"Teacher": [], "Student": []}
    )  # per role, per seed: image id -> Dice on the paired split
    classes: dict[str, str] = field(default_factory=dict)  # image id -> class
    worst: list[WorstRow] = field(default_factory=list)
    examples: list[Figure] = field(default_factory=list)  # overlays of the first seed's reported model
    pseudo: list[Figure] = field(default_factory=list)  # pseudo-label samples of the first seed

    @property
    def split(self) -> str:
        """The splits the seeds were paired on (``test``, ``val``, ``test+val``; "" when none were)."""
        return joined_split({p.split for p in self.seed_pairs})

    def mean_diffs(self) -> dict[str, float]:
        """Each image's Student - Teacher difference averaged over the seeds that scored it."""
        return mean_per_image([p.diffs for p in self.seed_pairs])


def study_entries(loaded: Experiment | SelfTrainRun) -> list[ExperimentEntry]:
    """The runs of an experiment that loaded, or a single self-training run as a one-entry study."""
    if isinstance(loaded, Experiment):
        return [e for e in loaded.entries if e.run is not None]
    t = loaded.teacher
    arch = str((t.get("arch") if t else None) or "unknown")
    seed = t.get("seed") if t else None
    return [
        ExperimentEntry(arch=arch, student_arch=None, seed=seed, dir=loaded.name, status="done", run=loaded)
    ]


def _add_entry(res: ArchResults, e: ExperimentEntry, warn: Warnings) -> None:
    assert e.run is not None
    teacher = e.run.teacher
    student, chosen = e.run.student()
    res.pairs.append((e.seed, teacher, student, chosen))
    name = entry_name(e)
    if teacher is not None and student is not None:
        split = common_split(teacher, student)
        if split:
            diffs = image_diffs(teacher.per_image[split], student.per_image[split])
            res.seed_pairs.append(SeedPair(e.seed, split, chosen, diffs))
            for label, r in (("Teacher", teacher), ("Student", student)):
                res.dice[label].append(dice_by_image(r.per_image[split]))
                res.classes.update(
                    (str(row["id"]), class_of(row)) for row in r.per_image[split] if row.get("id")
                )
    reported = student or teacher
    if reported is None or not reported.eval_split:
        return
    split = reported.eval_split
    res.worst += [(name, split, r) for r in by_dice(reported.per_image[split])[:N_WORST]]
    if e is res.entries[0]:  # example figures of the first seed only
        res.examples = overlay_figures(
            reported,
            split,
            f"{name} {'Student' if student else 'Teacher'}",
            f"overlay_{e.dir}",
            warn,
            teacher if student else None,
        )
        res.pseudo = pseudo_figures(e.run, name, f"{e.dir}", warn)


def gather(entries: list[ExperimentEntry], warn: Warnings) -> list[ArchResults]:
    """Per architecture (in order of first appearance): paired differences, scores, worst cases, examples."""
    by_arch: dict[str, list[ExperimentEntry]] = defaultdict(list)
    for e in entries:
        by_arch[e.arch].append(e)
    out = []
    for arch, group in by_arch.items():
        group.sort(key=lambda e: (e.seed is None, e.seed or 0))
        res = ArchResults(arch=arch, entries=group)
        for e in group:
            _add_entry(res, e, warn)
        out.append(res)
    return out
