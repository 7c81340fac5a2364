"""One entry point for every way of using unlabelled images: ``selftrain.method``.

* ``teacher_student``: the study's offline loop (:func:`teachseg.selftrain.loop.run_selftrain`).
* ``mean_teacher`` and ``fixmatch``: online methods (:mod:`teachseg.selftrain.online`), one training run.
* ``supervised``: the labelled images only: the baseline every comparison needs (trained until validation
  Dice stops improving with ``train.stop: converge``, the default).
* ``pretrain``: self-supervised pretraining of the encoder on the training images (labelled and unlabelled,
  :mod:`teachseg.pretrain`), then supervised fine-tuning from it.

Any method starts from this run's pretrained encoder with ``model.encoder_weights: pretrain`` (a pretrained
Teacher, then Students, for ``teacher_student``); a pretrained encoder is made or reused, and checked against
the run's split, before anything trains (:func:`teachseg.pretrain.method.resolve_encoder_weights`).

Every method writes the same run folder as the study's loop: ``gen0/`` (an ordinary training run folder
with ``model/``, ``metrics.csv``, per-image scores), ``lineage.json`` and ``summary.json``, so reports,
``predict`` and ``smp.from_pretrained`` read them all alike. The online methods record one generation with
their own statistics: the share of unlabelled pixels above the confidence threshold per epoch (in
``gen0/metrics.csv`` and the lineage), and, when ``label_fraction`` withheld masks, the Dice of the final
model's predictions on those unlabelled images against the withheld masks.

Every run records the dataset's modality (``split.json``; it decides the online methods' strong augmentation
for every arm and seed alike), its optimiser steps, and scores its final model on the selection images
(``data.select_fraction``) that choose between methods and that nothing inside the run reads.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np

from teachseg.config import ONLINE_METHODS, Config
from teachseg.data.datasets import Record
from teachseg.data.strong import modality_of
from teachseg.errors import ConfigError
from teachseg.runfiles import GenerationEntry, Lineage, SelftrainSummary, TrainSummary
from teachseg.training.prepare import PreparedData, prepare_data
from teachseg.training.progress import as_reporter, known_epochs
from teachseg.training.spec import ModelSpec

LINEAGE = "lineage.json"


def run_method(
    cfg: Config,
    run_dir: Path,
    *,
    resume: bool = False,
    console: Any = None,
    data: PreparedData | None = None,
) -> dict[str, Any]:
    """Run (or resume) ``cfg.selftrain.method`` in ``run_dir``; returns the run's summary."""
    from teachseg.pretrain.method import needs_split_check, resolve_encoder_weights

    method = cfg.selftrain.method
    if needs_split_check(cfg):  # make or reuse the pretrained encoder; refuse one that saw held-out images
        data = data or prepare_data(cfg, run_dir, resume=resume)
        cfg = resolve_encoder_weights(cfg, data, console=console)
    if method == "teacher_student":
        from teachseg.selftrain.loop import run_selftrain

        return run_selftrain(cfg, run_dir, resume=resume, console=console, data=data)
    report = as_reporter(console)
    say = report.print
    started = time.perf_counter()
    data = data or prepare_data(cfg, run_dir, resume=resume)
    spec = ModelSpec.teacher(cfg)
    unlabelled: list[Record] = []
    bad: list[dict[str, str]] = []
    if method in ONLINE_METHODS:
        from teachseg.selftrain.loop import check_unlabelled

        unlabelled, bad = check_unlabelled(data.unlabelled, cfg.selftrain.skip_bad)
        if not unlabelled:
            raise ConfigError(
                f"selftrain.method={method} learns from unlabelled images, and this run has none "
                f"(data.label_fraction={cfg.data.label_fraction:g}, no unlabelled/ folder or data.unlabelled_dirs)",
                fix="add images without masks, set data.label_fraction below 1, or use method supervised",
            )
        say(
            f"[bold]{method}[/]: training {spec.name} on {len(data.train)} labelled + "
            f"{len(unlabelled)} unlabelled images"
        )
        summary = train_online(
            cfg,
            run_dir / "gen0",
            data.train,
            unlabelled,
            data.val,
            data.test,
            spec,
            resume=resume,
            console=report,
            modality=data.modality(cfg.selftrain.online.modality),
            select_records=data.select,
        )
    elif method == "pretrain":
        from teachseg.pretrain.method import finetune

        say(
            f"[bold]pretrain[/]: fine-tuning {spec.name} from its pretrained encoder on {len(data.train)} "
            "labelled images"
        )
        summary = finetune(cfg, run_dir / "gen0", data, resume=resume, console=report)
    else:
        from teachseg.training.fit import train_model

        say(f"[bold]supervised[/]: training {spec.name} on {len(data.train)} labelled images")
        summary = train_model(
            cfg,
            run_dir / "gen0",
            data.train,
            data.val,
            data.test,
            spec=spec,
            select_records=data.select,
            resume=resume,
            console=report,
            extra_summary={"method": "supervised", "augmentation": "weak"},
            phase="gen0 supervised",
        )
    if summary is None:  # DDP child process
        return {}
    trained = TrainSummary.from_data(summary, path=run_dir / "gen0" / "summary.json")
    withheld = [r for r in data._records(data.split.label_dropped)] if data.split.label_dropped else []
    stats: dict[str, Any] | None = None
    if method in ONLINE_METHODS:
        stats = online_statistics(run_dir / "gen0", trained, withheld, cfg)
    pretrained = (trained.model_extra or {}).get("pretrain")  # the pretraining it started from, if any
    lineage = Lineage(
        generations=[
            GenerationEntry.of(
                0,
                method,
                trained,
                "gen0",
                pseudo=stats,
                decision=f"{method}: one training run",
                **({"pretrain": pretrained} if pretrained else {}),
            )
        ],
        final_generation=0,
        skipped_bad=bad,
        unlabelled_excluded=len(data.split.unlabelled_excluded),
        stopped_because=f"{method} trains once",
        method=method,
    )
    lineage.write(run_dir / LINEAGE)
    result = SelftrainSummary(
        final_model="gen0/model",
        final_generation=0,
        teacher=trained,
        best_student=None,
        stopped_because=f"{method} trains once",
        n_labelled=len(data.train),
        n_unlabelled=len(unlabelled),
        wall_seconds=round(time.perf_counter() - started, 2),
        total_steps=trained.steps,
        models_compared=1,
        modality=data.modality(cfg.selftrain.online.modality),
        method=method,
    )
    result.write(run_dir / "summary.json")
    return result.to_data()


def planned_epochs(cfg: Config) -> tuple[int | None, bool]:
    """The epochs one run of ``cfg.selftrain.method`` trains, and whether that is only an upper bound.

    A teacher_student loop trains its Teacher (none with ``selftrain.teacher_model``) and up to
    ``max_generations`` Students; the no-gain rule may stop it sooner (a bound), unless ``patience`` is at
    least the cap. The other methods train once, for ``train.epochs``. With ``train.stop: converge`` no fit's
    length is known (the epoch cap from ``train.converge.max_steps`` is a guard, not a plan): None.
    """
    st = cfg.selftrain
    if cfg.train.stop != "epochs":
        return None, False
    if st.method != "teacher_student":
        return cfg.train.epochs, False
    teacher = 0 if st.teacher_model is not None else cfg.train.epochs
    students = st.max_generations * (st.student.epochs or cfg.train.epochs)
    return teacher + students, st.patience < st.max_generations


def train_online(
    cfg: Config,
    run_dir: Path,
    labelled: Sequence[Record],
    unlabelled: Sequence[Record],
    val_records: Sequence[Record],
    test_records: Sequence[Record],
    spec: ModelSpec,
    *,
    resume: bool = False,
    console: Any = None,
    modality: str | None = None,
    select_records: Sequence[Record] = (),
) -> dict[str, Any] | None:
    """Train ``spec`` with ``cfg.selftrain.method`` (mean_teacher or fixmatch) into ``run_dir``.

    The same datasets, loss, optimiser, schedule, stopping rule, checkpoints, selection, export and scoring as
    :func:`teachseg.training.fit.train_model`; only the module and the loaders differ. ``modality`` is the
    strong augmentation's (the dataset's, :meth:`~teachseg.training.prepare.PreparedData.modality`; default:
    decided from ``unlabelled`` by the same rule).
    """
    from teachseg.data.strong import strong_pipeline
    from teachseg.data.transforms import JointTransform, Normalise
    from teachseg.data.views import UnlabelledViews
    from teachseg.io import read_json
    from teachseg.models import IMAGENET_MEAN, IMAGENET_STD
    from teachseg.selftrain.online import OnlineSemiModule
    from teachseg.selftrain.online_data import OnlineDataModule
    from teachseg.training import steps
    from teachseg.training.fit import fit_select_export

    method, o = cfg.selftrain.method, cfg.selftrain.online
    epochs = cfg.train.epochs
    if resume:
        from teachseg.io import remove_stale_temporaries
        from teachseg.training.fit import is_child_rank

        if not is_child_rank():  # what a killed run was writing (checkpoints, model folder)
            remove_stale_temporaries(run_dir, recursive=True)
        if (run_dir / "summary.json").is_file():
            as_reporter(console).skip_epochs(known_epochs(cfg))
            return read_json(run_dir / "summary.json")
    run_dir.mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    model = spec.build()
    train_ds, val_ds = steps.build_datasets(cfg, labelled, val_records)
    d = cfg.data
    modality = modality or modality_of(unlabelled, o.modality)
    views = UnlabelledViews(
        unlabelled,
        d.image_size,
        JointTransform(d.image_size, d.augment),
        Normalise(IMAGENET_MEAN, IMAGENET_STD),
        strong_pipeline(modality, o.strength),  # type: ignore[arg-type]
        seed=cfg.seed,
        two_strong=o.two_strong,
        cache=d.cache_images,
    )
    base = steps.build_module(cfg, model, epochs)
    evaluate = o.evaluate if o.evaluate != "auto" else ("ema" if method == "mean_teacher" else "model")
    module = OnlineSemiModule(
        model,
        base.loss,
        method=method,  # type: ignore[arg-type]
        unlabelled_weight=o.unlabelled_weight,
        rampup_epochs=o.rampup_epochs,
        ema_decay=o.ema_decay,
        confidence=o.confidence,
        teacher=o.teacher,
        evaluate=evaluate,  # type: ignore[arg-type]
        cutmix_p=o.cutmix_p,
        feature_dropout=o.feature_dropout,
        two_strong=o.two_strong,
        seed=cfg.seed,
        **steps.module_options(cfg, epochs),
    )
    dm = OnlineDataModule(
        train_ds,
        views,
        val_ds,
        batch_size=d.batch_size,
        unlabelled_batch_size=o.unlabelled_batch_size,
        num_workers=d.num_workers,
        seed=cfg.seed,
        epoch_over=o.epoch_over,
    )
    labelled_per_epoch = len(train_ds)
    if o.epoch_over == "unlabelled":  # the labelled images are cycled for a pass over the unlabelled ones
        labelled_per_epoch = max(len(views) // (o.unlabelled_batch_size or d.batch_size), 1) * d.batch_size
    return fit_select_export(
        cfg,
        run_dir,
        spec,
        module,
        dm,
        labelled_per_epoch,
        labelled,
        val_records,
        test_records,
        select_records=select_records,
        epochs=epochs,
        resume=resume,
        console=console,
        phase=f"gen0 {method}",
        extra_summary={
            "method": method,
            "n_unlabelled": len(unlabelled),
            "evaluated_network": evaluate,
            "strong_augmentation": modality,
            "augmentation": f"weak+strong:{modality}",
            "epoch_over": o.epoch_over,
        },
    )


def online_statistics(
    run_dir: Path, summary: TrainSummary, withheld: Sequence[Record], cfg: Config
) -> dict[str, Any]:
    """Per-epoch share of confident unlabelled pixels (from ``metrics.csv``), and the final model's Dice on
    the unlabelled images whose masks ``label_fraction`` withheld."""
    import csv

    confident: list[float | None] = []
    metrics = run_dir / "metrics.csv"
    if metrics.is_file():
        with open(metrics, encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                value = float(row.get("unl_confident") or "nan")
                confident.append(None if math.isnan(value) else round(value, 6))
    stats: dict[str, Any] = {"confident_share_per_epoch": confident, "dice_vs_withheld_masks": None}
    if withheld:
        from teachseg.models import load_model_folder
        from teachseg.training.evaluate import evaluate_records

        model, meta = load_model_folder(run_dir / "model")
        rows = evaluate_records(
            model, meta, list(withheld), cfg.data.mat_variable, batch_size=cfg.data.batch_size, tta=False
        )
        dices = [float(r["dice"]) for r in rows]  # type: ignore[arg-type]
        stats["dice_vs_withheld_masks"] = float(np.mean(dices)) if dices else None
        stats["n_withheld"] = len(dices)
    return stats
