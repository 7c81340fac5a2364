"""Build the Lightning Trainer, train one model, and write its run folder.

:func:`train_model` chains the steps of :mod:`teachseg.training.steps` for one model (a
:class:`~teachseg.training.spec.ModelSpec`); this module holds the Lightning plumbing they share: the
Trainer, atomic checkpoints and the per-epoch ``metrics.csv``.

A run folder holds: ``config.yaml``, ``split.json`` (written by the caller), ``metrics.csv`` (one row per
validation, with its epoch and optimiser step), ``checkpoints/`` (``best.ckpt`` on validation Dice,
``last.ckpt``; written atomically), ``model/`` (the best epoch's weights as an smp model folder),
``val_per_image.csv`` / ``test_per_image.csv`` / ``select_per_image.csv``, ``pred/`` (probability and
ground-truth PNGs for the report) and ``summary.json``.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import time
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
from teachseg.io import atomic_path, remove_stale_temporaries, write_text
from teachseg.precision import lightning_name, resolve
from teachseg.runfiles import TrainSummary
from teachseg.training import convergence, steps
from teachseg.training.module import SegmentationModule
from teachseg.training.progress import EPOCH, Converging, as_reporter, known_epochs
from teachseg.training.spec import ModelSpec

METRIC_COLUMNS = ["epoch", "step", "train_loss", "val_loss", "val_dice", "val_jaccard"]
#: the columns written as whole numbers
_COUNTS = ("epoch", "step")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints go to a temporary file and are renamed into place: a kill never leaves a torn file."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        """Save to a temporary file, then rename it to ``path``."""
        with atomic_path(Path(path), suffix=".ckpt") as tmp:
            torch.save(checkpoint, tmp)


class EpochRecorder(Callback):
    """Writes ``metrics.csv`` after every validation, measures training throughput, and reports the fit's
    epochs and batches to ``console`` (a :class:`~teachseg.training.progress.Reporter`, or anything with
    rich's ``print``) as the phase ``phase``.

    With ``stopper`` (``train.stop: converge``) the fit has no known length: its epoch cap is a guard derived
    from ``max_steps``, never shown; the reporter hears where the stopping rule stands instead
    (:class:`~teachseg.training.progress.Converging`, read from ``stopper``'s own state)."""

    def __init__(
        self,
        path: Path,
        n_train: int,
        console: Any = None,
        phase: str = "training",
        stopper: convergence.ConvergenceStop | None = None,
    ):
        self.path = path
        self.n_train = n_train
        self.reporter = as_reporter(console)
        self.phase = phase
        self.stopper = stopper
        self.train_seconds = 0.0
        self.images_seen = 0
        self._t0: float | None = None

    def _epochs(self, trainer: L.Trainer) -> int | None:
        """The fit's length as the display shows it: None while it converges."""
        return None if self.stopper is not None else int(trainer.max_epochs or 0)

    def _report_convergence(self, trainer: L.Trainer, pl_module: L.LightningModule, validating: bool) -> None:
        """Where the stopping rule stands (it has seen every validation before the current epoch's)."""
        assert self.stopper is not None
        score = float(self.stopper.best_score)
        best = score if math.isfinite(score) else None
        # the epoch of the rule's best: the first validation that scored it (later equal scores are no gain)
        best_epoch = next(
            (
                int(row["epoch"])
                for row in getattr(pl_module, "history", [])
                if best is not None and abs(float(row["val_dice"]) - best) <= 1e-6
            ),
            None,
        )
        self.reporter.converging(
            Converging(
                epoch=trainer.current_epoch + 1,
                step=int(trainer.global_step),
                wait=int(self.stopper.wait_count),
                patience=int(self.stopper.patience),
                best=best if best_epoch is not None else None,
                best_epoch=best_epoch,
                validating=validating,
            )
        )

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:  # a resumed fit starts at the epoch its checkpoint reached
            self.reporter.start(self.phase, self._epochs(trainer), EPOCH, done=trainer.current_epoch)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t0 = time.perf_counter()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not trainer.is_global_zero:
            return
        if self.stopper is not None:
            self._report_convergence(trainer, pl_module, validating=False)
            return
        epoch, n = trainer.current_epoch, trainer.num_training_batches
        share = (batch_idx + 1) / n if 0 < n < float("inf") else 0.0
        where = f"{batch_idx + 1}/{n}" if 0 < n < float("inf") else f"{batch_idx + 1}"
        self.reporter.update(epoch + min(share, 1.0), f"epoch {epoch + 1}/{trainer.max_epochs} · {where}")

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._t0 is not None and not trainer.sanity_checking:
            self.train_seconds += time.perf_counter() - self._t0
            self.images_seen += self.n_train
            self._t0 = None
        if trainer.is_global_zero and not trainer.sanity_checking:
            epoch = trainer.current_epoch
            if self.stopper is not None:
                self._report_convergence(trainer, pl_module, validating=True)
            else:
                self.reporter.update(epoch + 1, f"epoch {epoch + 1}/{trainer.max_epochs} · validation")

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        history = getattr(pl_module, "history", [])
        write_metrics_csv(self.path, history)
        if history:
            self.reporter.epoch(self.phase, history[-1], self._epochs(trainer))

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self.reporter.finish()


def evaluation_phase(phase: str) -> str:
    """The name of a fit's evaluation phase: ``gen1 Student`` -> ``gen1 evaluation``."""
    head, _, _ = phase.rpartition(" ")
    return f"{head} evaluation" if head else "evaluation"


def write_metrics_csv(path: Path, history: Sequence[dict[str, float]]) -> None:
    """Write ``metrics.csv`` (one row per validation, :data:`METRIC_COLUMNS`) atomically."""
    # methods may add their own per-epoch statistics (the online methods' unl_loss, unl_confident)
    extra = [k for row in history for k in row if k not in METRIC_COLUMNS]
    columns = METRIC_COLUMNS + list(dict.fromkeys(extra))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", restval="nan")
    writer.writeheader()
    for row in history:
        writer.writerow({k: _cell(k, row[k]) for k in columns if k in row})
    write_text(path, buf.getvalue())


def verbose() -> bool:
    """Whether the user asked for Lightning's own lines (``--verbose`` or ``--debug``: ``TEACHSEG_VERBOSE=1``)."""
    return os.environ.get("TEACHSEG_VERBOSE", "") not in ("", "0")


def _cell(key: str, value: Any) -> Any:
    if key in _COUNTS:
        return value
    # a learning rate can be far below 1e-6, and six decimals would write it as 0
    return f"{value:.6g}" if key == "lr" else f"{value:.6f}"


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
