"""Build the Lightning Trainer, train one model, and write its run folder.

:func:`train_model` chains the steps of :mod:`teachseg.training.steps` for one model (a
:class:`~teachseg.training.spec.ModelSpec`); this module holds the Lightning plumbing they share: the
Trainer and atomic checkpoints (the per-validation ``metrics.csv`` and the epoch records: :mod:`.recorder`).

A run folder holds: ``config.yaml``, ``split.json`` (written by the caller), ``metrics.csv`` (one row per
validation, with its epoch and optimiser step), ``checkpoints/`` (``best.ckpt`` on validation Dice,
``last.ckpt``; written atomically), ``model/`` (the best epoch's weights as an smp model folder),
``val_per_image.csv`` / ``test_per_image.csv`` / ``select_per_image.csv``, ``pred/`` (probability and
ground-truth PNGs for the report) and ``summary.json``.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelSummary
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO

from teachseg.config import Config
from teachseg.data.datasets import Record
from teachseg.io import atomic_path, remove_stale_temporaries
from teachseg.precision import lightning_name, resolve
from teachseg.runfiles import TrainSummary
from teachseg.training import convergence, steps
from teachseg.training.module import SegmentationModule
from teachseg.training.progress import as_reporter, known_epochs

# the recorder and metrics.csv live in .recorder; imported from here by the methods and tests
from teachseg.training.recorder import EpochRecorder, evaluation_phase, write_metrics_csv
from teachseg.training.spec import ModelSpec


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints go to a temporary file and are renamed into place: a kill never leaves a torn file."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        """Save to a temporary file, then rename it to ``path``."""
        with atomic_path(Path(path), suffix=".ckpt") as tmp:
            torch.save(checkpoint, tmp)


def verbose() -> bool:
    """Whether the user asked for Lightning's own lines (``--verbose`` or ``--debug``: ``TEACHSEG_VERBOSE=1``)."""
    return os.environ.get("TEACHSEG_VERBOSE", "") not in ("", "0")


def quiet_lightning() -> None:
    """Keep Lightning's start-up chatter (tips, accelerator banners, "`Trainer.fit` stopped") out of the
    user's terminal, unless :func:`verbose`."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.INFO if verbose() else logging.WARNING)
    for msg in (
        ".*does not have many workers.*",
        ".*smaller than the logging interval.*",
        ".*LeafSpec.*",
        ".*litlogger.*",
    ):
        warnings.filterwarnings("ignore", message=msg)


def is_child_rank() -> bool:
    """True in the extra processes Lightning's DDP launcher starts (they must not write run files)."""
    return os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("NODE_RANK", "0") != "0"


def does_shared_work() -> bool:
    """True where one-off work (pseudo-labels, scores other ranks receive) is done: rank 0 of a distributed
    job, or a process outside one (a DDP child re-running the command has not joined the group before its
    first fit, and then repeats what rank 0 did before that fit)."""
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def from_rank_zero(value: Any) -> Any:
    """``value`` as rank 0 has it, on every rank (``value`` itself outside distributed training).

    Lightning's DDP runs the whole command once per process and keeps the process group between fits, so
    a job with several fits (self-training's Teacher, pseudo-labels, Students) must take the same decisions
    on every rank: only rank 0 has the summaries, so the others receive them here. This also waits for rank 0
    (e.g. while it writes pseudo-labels the next fit reads).
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    box = [value if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def build_trainer(cfg: Config, run_dir: Path, epochs: int, callbacks: list[Callback]) -> L.Trainer:
    """The Lightning Trainer of ``cfg.train`` (precision resolved by :mod:`teachseg.precision`, atomic
    checkpoints, CSV logs in ``run_dir/logs``). Lightning draws no progress bar: the command's display does
    (see :mod:`teachseg.training.progress`); its model summary shows only when :func:`verbose`, as log lines."""
    quiet_lightning()
    t = cfg.train
    if (
        verbose()
    ):  # the plain summary, a log line (Lightning's rich one would print past the command's display)
        callbacks = [*callbacks, ModelSummary()]
    return L.Trainer(
        max_epochs=epochs,
        accelerator=t.accelerator,
        devices=t.devices,
        strategy=t.strategy,
        num_nodes=t.num_nodes,
        precision=lightning_name(resolve(t.precision, t.accelerator)),  # type: ignore[arg-type]
        logger=CSVLogger(str(run_dir), name="logs", version=""),
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        use_distributed_sampler=False,
        num_sanity_val_steps=0,
        enable_progress_bar=False,
        enable_model_summary=False,  # see ModelSummary above
        log_every_n_steps=t.log_every_n_steps,
        limit_train_batches=t.limit_train_batches,
        default_root_dir=str(run_dir),
    )


def train_model(
    cfg: Config,
    run_dir: Path,
    train_records: Sequence[Record],
    val_records: Sequence[Record],
    test_records: Sequence[Record] = (),
    *,
    spec: ModelSpec,
    select_records: Sequence[Record] = (),
    epochs: int | None = None,
    init_state: dict[str, torch.Tensor] | None = None,
    strong_augment: bool = False,
    resume: bool = False,
    console: Any = None,
    extra_summary: dict[str, Any] | None = None,
    phase: str = "training",
) -> dict[str, Any] | None:
    """Train the model ``spec`` describes on ``train_records`` (hard masks and/or pseudo-labels), select
    it on validation Dice, export it to ``run_dir/model`` and score it.

    ``epochs`` defaults to ``cfg.train.epochs`` (the length of a ``train.stop: epochs`` run; a converging run
    ends on its own, see :mod:`teachseg.training.convergence`); ``select_records`` are scored at the end and
    read by nothing else (``data.select_fraction``); ``init_state`` replaces the built model's initial weights
    (a Student initialised from its Teacher). Returns the summary (the data of the
    :class:`~teachseg.runfiles.TrainSummary` written to ``run_dir/summary.json``),
    or None in DDP child processes. With ``resume`` a finished run is returned as is and an interrupted one
    continues from ``last.ckpt``. ``console`` hears of the epochs (a
    :class:`~teachseg.training.progress.Reporter`, or anything with rich's ``print``); ``phase`` names the fit
    there (``gen1 Student``; its evaluation is then ``gen1 evaluation``).
    """
    epochs = epochs or cfg.train.epochs
    summary_path = run_dir / "summary.json"
    if resume and not is_child_rank():
        remove_stale_temporaries(run_dir, recursive=True)  # what a killed run was writing (checkpoints ...)
    if resume and summary_path.is_file():
        as_reporter(console).skip_epochs(known_epochs(cfg, epochs))
        return TrainSummary.read(summary_path).to_data()
    run_dir.mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    model = spec.build()
    if init_state is not None:
        model.load_state_dict(init_state)
    train_ds, val_ds = steps.build_datasets(cfg, train_records, val_records, strong_augment=strong_augment)
    module = steps.build_module(cfg, model, epochs)
    dm = steps.build_datamodule(cfg, train_ds, val_ds)
    return fit_select_export(
        cfg,
        run_dir,
        spec,
        module,
        dm,
        len(train_ds),
        train_records,
        val_records,
        test_records,
        select_records=select_records,
        epochs=epochs,
        resume=resume,
        console=console,
        extra_summary=extra_summary,
        phase=phase,
    )


def pretrained_encoder_summary(weights: str | None) -> dict[str, Any]:
    """``{"pretrain": {...}}`` for a summary when the encoder started from a ``teachseg pretrain`` folder
    (which pretraining, on how many images, at what cost; :mod:`teachseg.pretrain.record`), else ``{}``."""
    from teachseg.pretrain.record import PretrainRecord  # a plain run file, imported only here

    return PretrainRecord.summary_for(weights)


def fit_select_export(
    cfg: Config,
    run_dir: Path,
    spec: ModelSpec,
    module: SegmentationModule,
    datamodule: L.LightningDataModule,
    images_per_epoch: int,
    train_records: Sequence[Record],
    val_records: Sequence[Record],
    test_records: Sequence[Record],
    *,
    select_records: Sequence[Record] = (),
    epochs: int,
    resume: bool,
    console: Any = None,
    extra_summary: dict[str, Any] | None = None,
    phase: str = "training",
) -> dict[str, Any] | None:
    """Fit a built ``module``, select its best epoch, export and score it; write ``summary.json``.

    The part every way of training shares (:func:`train_model`, the online methods): checkpoints and
    ``metrics.csv`` in ``run_dir``, ``model/`` from the best epoch (of the network ``module.export_prefix``
    names), per-image scores. ``epochs`` is the run's length with ``train.stop: epochs``; with ``converge``
    the run stops on its own (:mod:`teachseg.training.convergence`). Returns the summary, or None in DDP
    child processes. ``console`` and ``phase`` as in :func:`train_model`.
    """
    ckpt_dir = run_dir / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    stop_cb = convergence.stopper(cfg)
    recorder = EpochRecorder(run_dir / "metrics.csv", images_per_epoch, console, phase, stop_cb)
    best_cb = steps.best_checkpoint(ckpt_dir)
    last_cb = steps.last_checkpoint(ckpt_dir)
    # Lightning runs checkpoint callbacks last, so every last.ckpt holds this validation's stopping state
    callbacks: list[Callback] = [recorder, best_cb, last_cb, *([stop_cb] if stop_cb is not None else [])]
    # a converging run sets its epoch cap once it knows its steps per epoch; until then, an upper bound
    max_epochs = epochs if stop_cb is None else cfg.train.converge.max_steps
    trainer = build_trainer(cfg, run_dir, max_epochs, callbacks)
    wall = steps.fit_module(trainer, module, datamodule, last if resume and last.is_file() else None)
    if not trainer.is_global_zero:
        return None

    model = steps.exported_network(module)
    best_row = steps.select_best(module, best_cb, ckpt_dir)
    history = module.history
    write_metrics_csv(run_dir / "metrics.csv", history)
    precision = str(resolve(cfg.train.precision, cfg.train.accelerator))
    trained: dict[str, Any] = dict(
        arch=spec.arch,
        encoder=spec.encoder,
        encoder_weights=spec.encoder_weights,
        seed=cfg.seed,
        epochs=int(history[-1]["epoch"]) if stop_cb is not None else epochs,
        best_epoch=int(best_row["epoch"]),
        steps=int(trainer.global_step),
        best_step=int(best_row["step"]) if "step" in best_row else None,
        stop=stop_cb.record() if stop_cb is not None else convergence.epochs_record(epochs),
        train_loss=best_row["train_loss"],
        val_loss=best_row["val_loss"],
        val_dice=best_row["val_dice"],
        val_jaccard=best_row["val_jaccard"],
        final_train_loss=history[-1]["train_loss"],
        n_train=sum(not r.is_pseudo for r in train_records),
        n_pseudo=sum(r.is_pseudo for r in train_records),
        n_val=len(val_records),
        n_test=len(test_records),
        image_size=cfg.data.image_size,
        precision=precision,
        wall_seconds=round(wall, 2),
        images_per_second=round(recorder.images_seen / recorder.train_seconds, 2)
        if recorder.train_seconds
        else None,
        model_dir="model",
    )
    trained |= extra_summary or {}
    if stop_cb is not None:  # why and where it stopped, before its evaluation phase begins
        recorder.reporter.stopped(phase, trained)
    trained |= pretrained_encoder_summary(spec.encoder_weights)
    meta = steps.export_model(cfg, spec, model, run_dir / "model", trained, train_records, val_records)

    # Native-resolution evaluation of the selected model (per-image metrics and predictions for the report).
    model.to(module.device if module.device.type != "meta" else torch.device("cpu"))
    trained |= steps.evaluate_run(
        cfg,
        model,
        meta,
        run_dir,
        val_records,
        test_records,
        precision=precision,
        selected_val_dice=trained["val_dice"],
        reporter=recorder.reporter,
        phase=evaluation_phase(phase),
        select_records=select_records,
    )
    summary = TrainSummary(**trained)
    summary.write(run_dir / "summary.json")
    return summary.to_data()
