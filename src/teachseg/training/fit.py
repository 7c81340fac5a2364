"""Build the Lightning Trainer, train one model, and write its run folder.

A run folder holds: ``config.yaml``, ``split.json`` (written by the caller), ``metrics.csv`` (one row per
epoch), ``checkpoints/`` (``best.ckpt`` on validation Dice, ``last.ckpt``; written atomically), ``model/``
(the best epoch's weights as an smp model folder), ``val_per_image.csv`` / ``test_per_image.csv``,
``pred/`` (probability and ground-truth PNGs for the report) and ``summary.json``.
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
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, RichProgressBar
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO

from teachseg.config import Config
from teachseg.data.datasets import EvalDataset, Record, SegmentationDataset
from teachseg.data.transforms import JointTransform, Normalise
from teachseg.errors import ModelError
from teachseg.io import atomic_path, read_json, remove_stale_temporaries, write_json, write_text
from teachseg.losses import BCEDiceLoss
from teachseg.models import IMAGENET_MEAN, IMAGENET_STD, ModelMeta, build_model, save_model_folder
from teachseg.precision import Precision, lightning_name, resolve
from teachseg.training.datamodule import SegDataModule
from teachseg.training.evaluate import (
    evaluate_records,
    summarise_rows,
    write_per_image_csv,
    write_pred_index,
)
from teachseg.training.identity import training_data_hashes
from teachseg.training.module import SegmentationModule

METRIC_COLUMNS = ["epoch", "train_loss", "val_loss", "val_dice", "val_jaccard"]


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints go to a temporary file and are renamed into place: a kill never leaves a torn file."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        with atomic_path(Path(path), suffix=".ckpt") as tmp:
            torch.save(checkpoint, tmp)


class EpochRecorder(Callback):
    """Writes ``metrics.csv`` after every validation, and measures training throughput."""

    def __init__(self, path: Path, n_train: int, console: Any = None):
        self.path = path
        self.n_train = n_train
        self.console = console
        self.train_seconds = 0.0
        self.images_seen = 0
        self._t0: float | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t0 = time.perf_counter()

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._t0 is not None and not trainer.sanity_checking:
            self.train_seconds += time.perf_counter() - self._t0
            self.images_seen += self.n_train
            self._t0 = None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        history = getattr(pl_module, "history", [])
        write_metrics_csv(self.path, history)
        if self.console is not None and history:
            r = history[-1]
            self.console.print(
                f"epoch {r['epoch']:>3}/{trainer.max_epochs}  train_loss {r['train_loss']:.4f}  "
                f"val_loss {r['val_loss']:.4f}  val_dice {r['val_dice']:.4f}  val_jaccard {r['val_jaccard']:.4f}",
                highlight=False,
            )


def write_metrics_csv(path: Path, history: Sequence[dict[str, float]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRIC_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (row[k] if k == "epoch" else f"{row[k]:.6f}") for k in METRIC_COLUMNS})
    write_text(path, buf.getvalue())


def quiet_lightning() -> None:
    """Keep Lightning's start-up chatter (tips, accelerator banners) out of the user's terminal."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for msg in (
        ".*does not have many workers.*",
        ".*smaller than the logging interval.*",
        ".*LeafSpec.*",
        ".*litlogger.*",
    ):
        warnings.filterwarnings("ignore", message=msg)


def resolve_precision(precision: str | Precision, accelerator: str) -> str:
    """Lightning's name (``32-true``, ``bf16-mixed``, ``16-mixed``) of the policy :mod:`teachseg.precision`
    resolves for ``accelerator``; the same policy as evaluation, pseudo-labels and ``predict``."""
    return lightning_name(resolve(precision, accelerator))


def warn_if_scores_differ(evaluated: float, selected: float, tolerance: float = 1e-5) -> None:
    """Warn when re-scoring the saved model does not reproduce the selected epoch's validation Dice.

    Both come from one scoring path under the same settings, so a gap means non-deterministic kernels (some
    GPU convolutions) or a model that changed after selection.
    """
    if not (math.isnan(evaluated) or math.isnan(selected)) and abs(evaluated - selected) > tolerance:
        warnings.warn(
            f"validation Dice of the saved model ({evaluated:.6f}) differs from the selected epoch's "
            f"({selected:.6f}); the run's kernels may not be deterministic",
            RuntimeWarning,
            stacklevel=2,
        )


def is_child_rank() -> bool:
    """True in the extra processes Lightning's DDP launcher starts (they must not write run files)."""
    return os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("NODE_RANK", "0") != "0"


def build_trainer(cfg: Config, run_dir: Path, epochs: int, callbacks: list[Callback]) -> L.Trainer:
    quiet_lightning()
    t = cfg.train
    interactive = (
        t.progress_bar
        and os.isatty(1)
        and not os.environ.get("CI")
        and os.environ.get("TEACHSEG_LOG_FORMAT", "auto") in ("auto", "rich")
    )
    if interactive:
        callbacks = [*callbacks, RichProgressBar(leave=False)]
    return L.Trainer(
        max_epochs=epochs,
        accelerator=t.accelerator,
        devices=t.devices,
        strategy=t.strategy,
        num_nodes=t.num_nodes,
        precision=resolve_precision(t.precision, t.accelerator),  # type: ignore[arg-type]
        logger=CSVLogger(str(run_dir), name="logs", version=""),
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        use_distributed_sampler=False,
        num_sanity_val_steps=0,
        enable_progress_bar=interactive,
        enable_model_summary=False,
        log_every_n_steps=t.log_every_n_steps,
        limit_train_batches=t.limit_train_batches,
        default_root_dir=str(run_dir),
    )


def _state_from_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    prefix = "model."
    return {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}


def train_model(
    cfg: Config,
    run_dir: Path,
    train_records: Sequence[Record],
    val_records: Sequence[Record],
    test_records: Sequence[Record] = (),
    *,
    arch: str | None = None,
    encoder: str | None = None,
    encoder_weights: str | None = "config",
    epochs: int | None = None,
    init_state: dict[str, torch.Tensor] | None = None,
    strong_augment: bool = False,
    dropout: float = 0.0,
    resume: bool = False,
    console: Any = None,
    extra_summary: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Train one model on ``train_records`` (hard masks and/or pseudo-labels), select it on validation Dice.

    Returns the summary (also written to ``run_dir/summary.json``), or None in DDP child processes. With
    ``resume`` a finished run is returned as is and an interrupted one continues from ``last.ckpt``.
    """
    arch = arch or cfg.model.arch
    encoder = encoder or cfg.model.encoder
    weights = cfg.model.encoder_weights if encoder_weights == "config" else encoder_weights
    epochs = epochs or cfg.train.epochs
    summary_path = run_dir / "summary.json"
    if resume and not is_child_rank():
        remove_stale_temporaries(run_dir, recursive=True)  # what a killed run was writing (checkpoints ...)
    if resume and summary_path.is_file():
        return read_json(summary_path)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_dir = run_dir / "checkpoints"
    last = ckpt_dir / "last.ckpt"

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    # model.decoder_dropout applies to every model trained here; a Student's own dropout may raise it.
    model = build_model(arch, encoder, weights, dropout=max(dropout, cfg.model.decoder_dropout))
    if init_state is not None:
        model.load_state_dict(init_state)
    norm = Normalise(IMAGENET_MEAN, IMAGENET_STD)
    d = cfg.data
    train_ds = SegmentationDataset(
        train_records,
        d.image_size,
        JointTransform(d.image_size, d.augment, strong=strong_augment),
        norm,
        seed=cfg.seed,
        confidence_mode=cfg.selftrain.confidence.mode,
        confidence_threshold=cfg.selftrain.confidence.threshold,
        mat_variable=d.mat_variable,
        cache=d.cache_images,
    )
    if d.cache_images:
        train_ds.preload()
    val_ds = EvalDataset(val_records, d.image_size, norm, mat_variable=d.mat_variable)
    loss = BCEDiceLoss(
        cfg.loss.bce_weight,
        cfg.loss.dice_weight,
        cfg.loss.dice_smooth,
        cfg.loss.dice_per_image,
        pseudo_weight=cfg.selftrain.pseudo_weight,
    )
    module = SegmentationModule(
        model,
        loss,
        lr=cfg.train.lr,
        weight_decay=cfg.train.weight_decay,
        epochs=epochs,
        scheduler=cfg.train.scheduler,
        threshold=cfg.train.threshold,
        channels_last=cfg.train.channels_last,
    )
    dm = SegDataModule(train_ds, val_ds, d.batch_size, d.num_workers, cfg.seed)
    recorder = EpochRecorder(run_dir / "metrics.csv", len(train_ds), console)
    best_cb = ModelCheckpoint(
        dirpath=str(ckpt_dir),
        filename="best",
        monitor="val_dice",
        mode="max",
        save_top_k=1,
        save_last=True,
        enable_version_counter=False,
    )
    trainer = build_trainer(cfg, run_dir, epochs, [recorder, best_cb])
    started = time.perf_counter()
    trainer.fit(module, datamodule=dm, ckpt_path=str(last) if resume and last.is_file() else None)
    if not trainer.is_global_zero:
        return None
    wall = time.perf_counter() - started

    best_path = Path(best_cb.best_model_path) if best_cb.best_model_path else last
    if not best_path.is_file():
        raise ModelError(
            "training produced no checkpoint", path=ckpt_dir, fix="check the logs in the run folder"
        )
    history = module.history
    write_metrics_csv(run_dir / "metrics.csv", history)
    best_row = max(history, key=lambda r: r["val_dice"] if not math.isnan(r["val_dice"]) else -1.0)
    model.load_state_dict(_state_from_checkpoint(best_path))
    model.eval()

    summary: dict[str, Any] = {
        "arch": arch,
        "encoder": encoder,
        "encoder_weights": None if weights is None else str(weights),
        "seed": cfg.seed,
        "epochs": epochs,
        "best_epoch": int(best_row["epoch"]),
        "train_loss": best_row["train_loss"],
        "val_loss": best_row["val_loss"],
        "val_dice": best_row["val_dice"],
        "val_jaccard": best_row["val_jaccard"],
        "final_train_loss": history[-1]["train_loss"],
        "n_train": sum(not r.is_pseudo for r in train_records),
        "n_pseudo": sum(r.is_pseudo for r in train_records),
        "n_val": len(val_records),
        "n_test": len(test_records),
        "image_size": d.image_size,
        "precision": str(resolve(cfg.train.precision, cfg.train.accelerator)),
        "wall_seconds": round(wall, 2),
        "images_per_second": round(recorder.images_seen / recorder.train_seconds, 2)
        if recorder.train_seconds
        else None,
        "model_dir": "model",
        **(extra_summary or {}),
    }
    meta = ModelMeta(
        arch=arch, encoder=encoder, image_size=d.image_size, threshold=cfg.train.threshold, mpp=d.mpp
    )
    meta.summary = {
        k: summary[k] for k in ("seed", "epochs", "best_epoch", "train_loss", "val_dice", "val_jaccard")
    }
    meta.trained_on = training_data_hashes(train_records, val_records)  # checked when reused as a Teacher
    save_model_folder(model, run_dir / "model", meta)

    # Native-resolution evaluation of the selected model (per-image metrics and predictions for the report).
    device = module.device if module.device.type != "meta" else torch.device("cpu")
    model.to(device)
    # Scored exactly as the epochs were (see training/evaluate.py): no TTA, the Trainer's precision, memory
    # format and validation batch size; so summary["val"]["dice"] is the selected epoch's val_dice.
    scoring = {"tta": False, "precision": summary["precision"], "resize": "probabilities"}
    same_as_epochs: dict[str, Any] = {
        "batch_size": d.batch_size,
        "tta": False,
        "precision": summary["precision"],
        "channels_last": cfg.train.channels_last,
    }
    val_rows = evaluate_records(
        model, meta, val_records, d.mat_variable, pred_dir=run_dir / "pred" / "val", **same_as_epochs
    )
    write_per_image_csv(run_dir / "val_per_image.csv", val_rows)
    val_stats = summarise_rows(val_rows)
    summary["val"] = val_stats
    summary["scoring"] = scoring
    if val_rows:
        warn_if_scores_differ(float(val_stats["dice"]), summary["val_dice"])  # type: ignore[arg-type]
    summary["test_dice"] = summary["test_jaccard"] = None
    if test_records:
        test_rows = evaluate_records(
            model, meta, test_records, d.mat_variable, pred_dir=run_dir / "pred" / "test", **same_as_epochs
        )
        write_per_image_csv(run_dir / "test_per_image.csv", test_rows)
        test_stats = summarise_rows(test_rows)
        summary["test"] = test_stats
        summary["test_dice"] = test_stats["dice"]
        summary["test_jaccard"] = test_stats["jaccard"]
    write_pred_index(run_dir / "pred", [r.id for r in (*val_records, *test_records)])
    write_json(summary_path, summary)
    return summary
