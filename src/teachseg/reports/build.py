"""Assemble a report: load the run folder, then build its sections in page order.

Each section has its own builder in :mod:`teachseg.reports.sections`; :mod:`teachseg.reports.writer`
writes the result to disk.
"""

from __future__ import annotations

from pathlib import Path

from teachseg.reports.document import Report, Section
from teachseg.reports.readers import Warnings
from teachseg.reports.runs import ExperimentEntry, SelfTrainRun, TrainRun, load
from teachseg.reports.sections.curves import study_curves_section, train_curves_section
from teachseg.reports.sections.distribution import study_distribution_section, train_distribution_section
from teachseg.reports.sections.examples import overlay_figures
from teachseg.reports.sections.lineage import lineage_section
from teachseg.reports.sections.methods import methods_section
from teachseg.reports.sections.paired import paired_section
from teachseg.reports.sections.predictions import study_predictions_section, train_predictions_section
from teachseg.reports.sections.pseudo import pseudo_section
from teachseg.reports.sections.results import gather, study_entries
from teachseg.reports.sections.seeds import seed_sections
from teachseg.reports.sections.setup import (
    describe_experiment,
    describe_selftrain,
    describe_train,
    setup_section,
)
from teachseg.reports.sections.suggest import suggest_section
from teachseg.reports.sections.train import train_results_section
from teachseg.reports.sections.worst import study_worst_section, train_worst_section


def teacher_student_entries(entries: list[ExperimentEntry]) -> list[ExperimentEntry]:
    """The runs the study's Teacher-versus-Student sections describe: the teacher-student runs (all of them
    in a plain experiment); in a grid of label fractions, those at the smallest fraction."""
    study = [e for e in entries if e.method in (None, "teacher_student")]
    fractions = {e.label_fraction for e in study if e.label_fraction is not None}
    if len(fractions) > 1:
        study = [e for e in study if e.label_fraction == min(fractions)]
    return study


def study_sections(entries: list[ExperimentEntry], warn: Warnings) -> list[Section]:
    """The sections of an experiment or self-training run, in page order."""
    methods = [methods_section(entries, warn)] if any(e.method for e in entries) else []
    entries = teacher_student_entries(entries)
    groups = gather(entries, warn)
    return [
        *methods,
        *seed_sections(groups),
        paired_section(groups),
        study_curves_section(groups),
        study_predictions_section(groups),
        pseudo_section(entries, groups),
        study_distribution_section(groups),
        lineage_section(entries),
        study_worst_section(groups),
    ]


def train_sections(run: TrainRun, warn: Warnings) -> list[Section]:
    """The sections of a single training run, in page order."""
    out = [train_results_section(run), train_curves_section(run)]
    split = run.eval_split
    if split:
        examples = overlay_figures(run, split, run.name, "overlay", warn)
        out += [
            train_predictions_section(examples),
            train_distribution_section(run, split),
            train_worst_section(run, split, examples),
        ]
    return out


def assemble(run_dir: Path, warn: Warnings) -> Report:
    """The report of ``run_dir`` (experiment, self-training or training run); empty sections left out."""
    kind, loaded = load(run_dir, warn)
    rep = Report(kind=kind, title="", run_dir=run_dir, warnings=warn)
    if isinstance(loaded, TrainRun):
        splits = describe_train(rep, loaded, run_dir)
        sections = train_sections(loaded, warn)
    else:
        entries = study_entries(loaded)
        if isinstance(loaded, SelfTrainRun):
            splits = describe_selftrain(rep, loaded, run_dir)
        else:
            splits = describe_experiment(rep, loaded, entries, run_dir)
        sections = study_sections(entries, warn)
    rep.sections = [s for s in [setup_section(splits), *sections, suggest_section(run_dir, warn)] if s.blocks]
    return rep
