"""The self-training loop: Teacher (generation 0) -> pseudo-labels -> Student -> replace if better -> repeat.

Every generation is a normal training run folder (``gen0/``, ``gen1/``, ...), so a resumed run reuses each
finished generation as is, keeps finished pseudo-labels, and continues an interrupted student from its last
checkpoint. ``lineage.json`` is rewritten (atomically) after every step.

Every replacement decision compares validation Dice on this run's validation images, scored the same way
(:func:`val_dice`): an external Teacher (``selftrain.teacher_model``) is first checked against this run's
held-out images and re-scored on them (:mod:`teachseg.selftrain.external`). Pseudo-labels on disk are reused
only when their manifest names the same teacher weights and TTA setting.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from teachseg.config import Config
from teachseg.data.datasets import Record
from teachseg.data.imageio import read_image
from teachseg.data.masks import read_mask
from teachseg.errors import DataError, ModelError
from teachseg.io import remove_stale_temporaries
from teachseg.models import ModelMeta, check_model_folder, load_model_folder
from teachseg.runfiles import GenerationEntry, Lineage, SelftrainSummary, TrainSummary
from teachseg.selftrain.external import check_teacher_data, rescore_teacher
from teachseg.selftrain.pseudolabel import generate_pseudo_labels, pseudo_records, sha256_file
from teachseg.training.fit import does_shared_work, from_rank_zero, is_child_rank, train_model
from teachseg.training.prepare import PreparedData, prepare_data
from teachseg.training.progress import as_reporter, known_epochs
from teachseg.training.spec import ModelSpec

LINEAGE = "lineage.json"


def check_unlabelled(records: list[Record], skip_bad: bool) -> tuple[list[Record], list[dict[str, str]]]:
    """Decode every unlabelled image before training starts; fail listing the bad ones, or skip them."""
    good: list[Record] = []
    bad: list[dict[str, str]] = []
    for rec in records:
        try:
            read_image(rec.image)
            good.append(rec)
        except DataError as exc:
            bad.append({"id": rec.id, "path": str(rec.image), "error": str(exc)})
    if bad and not skip_bad:
        listed = ", ".join(b["path"] for b in bad[:10]) + (
            f" and {len(bad) - 10} more" if len(bad) > 10 else ""
        )
        raise DataError(
            f"{len(bad)} unlabelled image(s) cannot be read: {listed}",
            fix="fix or remove them, or pass --skip-bad to leave them out (they are recorded in lineage.json)",
        )
    return good, bad


def check_teacher_folder(folder: Path, image_size: int) -> ModelMeta:
    """The metadata of an external Teacher's model folder; refused when trained for another input size."""
    meta = check_model_folder(folder)
    if meta.image_size != image_size:
        raise ModelError(
            f"the teacher was trained for input size {meta.image_size}, but data.image_size is {image_size}",
            path=folder,
            fix=f"set data.image_size={meta.image_size}, or train a new teacher",
        )
    return meta


def val_dice(summary: TrainSummary) -> float:
    """The validation Dice a replacement decision compares: per-image, at native size, on this run's
    validation images (``summary.val.dice``, the number the report and per-image CSV show)."""
    if summary.val is not None and summary.val.dice is not None:
        return float(summary.val.dice)
    return float("nan") if summary.val_dice is None else float(summary.val_dice)


def pseudo_quality(
    records: list[Record], manifest: dict[str, Any], pseudo_dir: Path, withheld: dict[str, Record]
) -> float | None:
    """Dice of the pseudo-labels against the masks withheld by ``label_fraction`` (a diagnostic only)."""
    from teachseg.data.datasets import read_pseudo
    from teachseg.metrics import image_scores

    dices = []
    for item in manifest["images"]:
        rec = withheld.get(item["id"])
        if rec is None or not rec.masks:
            continue
        prob = read_pseudo(pseudo_dir / item["file"])
        mask = read_mask(rec.masks, expected_shape=prob.shape)
        dices.append(image_scores(prob, mask).dice)
    return float(np.mean(dices)) if dices else None


def run_selftrain(
    cfg: Config,
    run_dir: Path,
    *,
    resume: bool = False,
    console: Any = None,
    data: PreparedData | None = None,
) -> dict[str, Any]:
    """Run (or resume) a whole self-training job in ``run_dir``; returns the summary.

    ``console`` hears of every phase (a :class:`~teachseg.training.progress.Reporter`, or anything with rich's
    ``print``); the generation count is open (the no-gain rule may stop early), so it says ``gen 1 of at most
    3`` and gives back the epochs of the generations it does not train.
    """
    st = cfg.selftrain
    report = as_reporter(console)
    say = report.print
    student_epochs = known_epochs(cfg, st.student.epochs)  # None: they converge, so never planned
    cap = (
        f"of at most {st.max_generations}" if st.patience < st.max_generations else f"of {st.max_generations}"
    )
    if resume and not is_child_rank():  # what a killed run was writing (pseudo-labels, lineage, checkpoints)
        remove_stale_temporaries(run_dir, recursive=True)
    data = data or prepare_data(cfg, run_dir, resume=resume)
    split = data.split
    leaked = set(split.unlabelled) & (set(split.val) | set(split.test) | set(split.select))
    if leaked:  # guaranteed by make_split; checked again because it would invalidate every result
        raise DataError(
            f"images are both unlabelled and in validation/test/selection: {sorted(leaked)[:5]}",
            path=run_dir / "split.json",
        )
    unlabelled, bad = check_unlabelled(data.unlabelled, st.skip_bad)
    withheld = {r.id: r for r in data._records(split.label_dropped)} if split.label_dropped else {}
    started = time.perf_counter()
    lineage = Lineage(
        generations=[],
        final_generation=0,
        skipped_bad=bad,
        # unlabelled images of a validation/test group (slide, patient, same picture): never pseudo-labelled
        unlabelled_excluded=len(split.unlabelled_excluded),
        method="teacher_student",
    )

    def save_lineage() -> None:
        if not is_child_rank():  # DDP: rank 0 writes the run files
            lineage.write(run_dir / LINEAGE)

    # Generation 0: the Teacher.
    if st.teacher_model is not None:
        teacher_model_dir = Path(st.teacher_model)
        meta = check_teacher_folder(teacher_model_dir, cfg.data.image_size)
        # the selection images are held out like the test images: a Teacher that saw them is refused too
        held_out = [*data.test, *data.select]
        check_teacher_data(teacher_model_dir, meta, data.val, held_out, data._records(split.label_dropped))
        say(
            f"[bold]generation 0[/]: scoring the teacher in {teacher_model_dir} on this run's validation images"
        )
        report.stage(f"gen 0 {cap}", level=1)
        # Its own val_dice is from another validation set: only a score on this run's is comparable.
        teacher_data: dict[str, Any] | None = rescore_teacher(
            cfg, teacher_model_dir, run_dir / "gen0", data.val, data.test, reporter=report
        )
        teacher_dir_name = str(teacher_model_dir)
    else:
        spec = ModelSpec.teacher(cfg)
        say(f"[bold]generation 0[/]: training the Teacher ({spec.name}) on {len(data.train)} labelled images")
        report.stage(f"gen 0 {cap}", level=1)
        teacher_data = train_model(
            cfg,
            run_dir / "gen0",
            data.train,
            data.val,
            data.test,
            spec=spec,
            select_records=data.select,
            resume=resume,
            console=report,
            phase="gen0 Teacher",
            extra_summary={"augmentation": "weak"},
        )
        teacher_model_dir = run_dir / "gen0" / "model"
        teacher_dir_name = "gen0"
    # DDP: every rank runs this loop and its fits in step; only rank 0 has the summaries, the others receive
    # them, so that all take the same decisions
    teacher_data = from_rank_zero(teacher_data)
    if teacher_data is None:
        return {}
    teacher = TrainSummary.from_data(teacher_data, path=run_dir / "gen0" / "summary.json")
    first_teacher = teacher  # summary.json's `teacher` is generation 0, whatever replaced it later
    lineage.generations.append(
        GenerationEntry.of(0, "teacher", teacher, teacher_dir_name, pseudo=None, decision="initial teacher")
    )
    save_lineage()
    teacher_gen, stopped = 0, ""
    best_student: TrainSummary | None = None
    # optimiser steps of every model trained here (an external Teacher's were taken elsewhere)
    total_steps = (teacher.steps or 0) if st.teacher_model is None else 0
    students_trained = 0

    if not unlabelled:
        stopped = "no unlabelled images: stopped after the Teacher"
        report.skip_epochs(None if student_epochs is None else st.max_generations * student_epochs)
        say(
            f"[yellow]{stopped}[/] (add images without masks, data.unlabelled_dirs, or data.label_fraction < 1)"
        )
    no_gain = 0
    for g in range(1, st.max_generations + 1 if unlabelled else 1):
        pseudo_dir = run_dir / "pseudo" / f"gen{g}"
        # the Teacher labels on the GPU when training uses one (same rule as the external Teacher's scoring)
        on_gpu = cfg.train.accelerator != "cpu" and torch.cuda.is_available()
        model, meta = load_model_folder(teacher_model_dir, map_location="cuda" if on_gpu else "cpu")
        report.stage(f"gen {g} {cap}", level=1)
        say(
            f"[bold]generation {g}[/]: teacher gen{teacher_gen} writes soft pseudo-labels for {len(unlabelled)} images"
        )
        labelled: tuple[dict[str, Any], dict[str, Any]] | None = None
        if does_shared_work():  # DDP: rank 0 writes them, the other ranks wait and read them
            manifest = generate_pseudo_labels(
                model,
                meta,
                unlabelled,
                pseudo_dir,
                generation=g,
                teacher=f"gen{teacher_gen}",
                teacher_sha256=sha256_file(teacher_model_dir / "model.safetensors"),
                tta=st.tta,
                batch_size=cfg.data.batch_size,
                precision=cfg.train.precision,
                backend=st.backend,
                progress=report,
            )
            pstats = dict(manifest["stats"])
            if withheld:
                pstats["dice_vs_withheld_masks"] = pseudo_quality(unlabelled, manifest, pseudo_dir, withheld)
            labelled = (manifest, pstats)
        manifest, pstats = from_rank_zero(labelled)
        teacher_state = (
            {k: v.cpu() for k, v in model.state_dict().items()} if st.student.init_from_teacher else None
        )
        del model
        s = st.student
        student_spec = ModelSpec.student(cfg)
        init_state = None
        if s.init_from_teacher:
            if (student_spec.arch, student_spec.encoder) != (meta.arch, meta.encoder):
                raise ModelError(
                    f"student.init_from_teacher needs the teacher's architecture ({meta.arch}-{meta.encoder}), "
                    f"got {student_spec.name}",
                    fix="set selftrain.student.init_from_teacher=false or use the same arch and encoder",
                )
            init_state = teacher_state
        # A retry after a rejected student uses another seed; otherwise it would repeat the same student.
        gen_cfg = cfg if no_gain == 0 else cfg.model_copy(update={"seed": cfg.seed + g})
        train_records = [*data.train, *pseudo_records(unlabelled, manifest, pseudo_dir)]
        say(
            f"generation {g}: training the Student ({student_spec.name}) on {len(data.train)} labelled + {len(unlabelled)} pseudo-labelled images"
        )
        student_data = train_model(
            gen_cfg,
            run_dir / f"gen{g}",
            train_records,
            data.val,
            data.test,
            spec=student_spec,
            select_records=data.select,
            epochs=s.epochs,
            init_state=init_state,
            strong_augment=s.strong_augment,
            resume=resume,
            console=report,
            extra_summary={
                "generation": g,
                "teacher": f"gen{teacher_gen}",
                "augmentation": "weak+noisy-student" if s.strong_augment else "weak",
            },
            phase=f"gen{g} Student",
        )
        student_data = from_rank_zero(student_data)
        if student_data is None:
            return {}
        student = TrainSummary.from_data(student_data, path=run_dir / f"gen{g}" / "summary.json")
        total_steps += student.steps or 0
        students_trained += 1
        gain = val_dice(student) - val_dice(teacher)
        accepted = gain > st.min_delta
        decision = (
            f"accepted: student beat teacher gen{teacher_gen} by {gain:+.4f} val Dice"
            if accepted
            else f"rejected: student {gain:+.4f} val Dice vs teacher gen{teacher_gen} (needs > {st.min_delta:+.4f})"
        )
        say(f"generation {g}: {decision}")
        lineage.generations.append(
            GenerationEntry.of(
                g,
                "student",
                student,
                f"gen{g}",
                pseudo=pstats,
                decision=decision,
                accepted=accepted,
                gain=gain,
            )
        )
        if best_student is None or val_dice(student) > val_dice(best_student):
            best_student = student.model_copy(update={"generation": g})
        if accepted:
            teacher, teacher_gen, no_gain = student, g, 0
            teacher_model_dir = run_dir / f"gen{g}" / "model"
            lineage.final_generation = g
        else:
            no_gain += 1
        save_lineage()
        if no_gain >= st.patience:
            stopped = f"no gain for {no_gain} generation(s) (patience {st.patience})"
            report.skip_epochs(None if student_epochs is None else (st.max_generations - g) * student_epochs)
            break
    else:
        if unlabelled:
            stopped = f"reached max_generations={st.max_generations}"

    final_dir = teacher_model_dir if st.teacher_model is None or teacher_gen else Path(st.teacher_model)
    lineage.stopped_because = stopped
    save_lineage()
    gen0_path = run_dir / "gen0" / "summary.json"
    gen0 = TrainSummary.read(gen0_path) if gen0_path.is_file() else first_teacher
    summary = SelftrainSummary(
        final_model=str(final_dir.relative_to(run_dir))
        if final_dir.is_relative_to(run_dir)
        else str(final_dir),
        final_generation=teacher_gen,
        teacher=gen0,
        best_student=best_student,
        stopped_because=stopped,
        n_labelled=len(data.train),
        n_unlabelled=len(unlabelled),
        wall_seconds=round(time.perf_counter() - started, 2),
        # the final model is the best on validation of the Teacher and every Student: 1 + Students looks
        total_steps=total_steps,
        models_compared=1 + students_trained,
        modality=data.modality(cfg.selftrain.online.modality),
        method="teacher_student",
    )
    if is_child_rank():
        return {}
    summary.write(run_dir / "summary.json")
    return summary.to_data()
