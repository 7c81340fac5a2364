"""The steps of one training run, each reusable on its own (self-training, and online methods to come).

:func:`teachseg.training.fit.train_model` chains them: :func:`build_datasets` -> :func:`build_module` ->
``build_trainer`` -> :func:`fit_module` -> :func:`select_best` -> :func:`export_model` ->
:func:`evaluate_run`.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn

from teachseg.config import Config
from teachseg.data.datasets import EvalDataset, Record, SegmentationDataset
from teachseg.data.transforms import JointTransform, Normalise
from teachseg.errors import ModelError
from teachseg.losses import BCEDiceLoss
from teachseg.models import IMAGENET_MEAN, IMAGENET_STD, ModelMeta, save_model_folder
from teachseg.training.datamodule import SegDataModule
from teachseg.training.evaluate import (
    evaluate_records,
    summarise_rows,
    write_per_image_csv,
    write_pred_index,
)
from teachseg.training.identity import training_data_hashes
from teachseg.training.module import SegmentationModule
from teachseg.training.progress import Reporter
from teachseg.training.spec import ModelSpec


def build_datasets(
    cfg: Config,
    train_records: Sequence[Record],
    val_records: Sequence[Record],
    *,
    strong_augment: bool = False,
) -> tuple[SegmentationDataset, EvalDataset]:
    """The augmented training set (hard masks and/or soft pseudo-labels; preloaded when cached) and the
    validation set, both normalised as the saved model expects."""
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
    return train_ds, val_ds


def build_datamodule(cfg: Config, train_ds: SegmentationDataset, val_ds: EvalDataset) -> SegDataModule:
    """The loaders of ``cfg.data`` (batch size, workers) over the two datasets, seeded with ``cfg.seed``."""
    return SegDataModule(train_ds, val_ds, cfg.data.batch_size, cfg.data.num_workers, cfg.seed)


def build_module(cfg: Config, model: nn.Module, epochs: int) -> SegmentationModule:
    """``model`` wrapped with the configured loss, optimiser, schedule and threshold."""
    loss = BCEDiceLoss(
        cfg.loss.bce_weight,
        cfg.loss.dice_weight,
        cfg.loss.dice_smooth,
        cfg.loss.dice_per_image,
        pseudo_weight=cfg.selftrain.pseudo_weight,
    )
    return SegmentationModule(model, loss, **module_options(cfg, epochs))


def module_options(cfg: Config, epochs: int) -> dict[str, Any]:
    """The :class:`SegmentationModule` settings of ``cfg.train`` (optimiser, schedule, threshold), shared by
    every way of training so that all of them use one optimiser and one schedule."""
    t = cfg.train
    return {
        "lr": t.lr,
        "weight_decay": t.weight_decay,
        "epochs": epochs,
        "scheduler": t.schedule,
        "threshold": t.threshold,
        "channels_last": t.channels_last,
        "plateau_patience": t.converge.plateau_patience,
        "plateau_factor": t.converge.lr_factor,
        "plateau_threshold": t.converge.min_delta,
    }


def best_checkpoint(ckpt_dir: Path) -> ModelCheckpoint:
    """Keeps ``best.ckpt`` (highest validation Dice) in ``ckpt_dir``."""
    return ModelCheckpoint(
        dirpath=str(ckpt_dir),
        filename="best",
        monitor="val_dice",
        mode="max",
        save_top_k=1,
        enable_version_counter=False,
    )


def last_checkpoint(ckpt_dir: Path) -> ModelCheckpoint:
    """Keeps ``last.ckpt`` in ``ckpt_dir``, written at every validation: what ``--resume`` continues from.

    A callback of its own because Lightning (2.6) writes the ``save_last`` file of a monitored checkpoint only
    when the best one changed, so a run killed on a plateau would start again from its best validation.
    """
    return ModelCheckpoint(dirpath=str(ckpt_dir), filename="last", save_top_k=1, enable_version_counter=False)


def fit_module(
    trainer: L.Trainer, module: L.LightningModule, datamodule: L.LightningDataModule, resume_from: Path | None
) -> float:
    """Run ``trainer.fit`` (continuing from ``resume_from`` when given); returns the wall-clock seconds."""
    started = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=str(resume_from) if resume_from else None)
    return time.perf_counter() - started


def _state_from_checkpoint(path: Path, prefix: str = "model.") -> dict[str, torch.Tensor]:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    return {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}


def exported_network(module: SegmentationModule) -> nn.Module:
    """The network a module validates and exports: ``module.model``, or the one its ``export_prefix`` names
    (an online method's EMA teacher)."""
    prefix = getattr(module, "export_prefix", "model.")
    net: Any = module
    for part in prefix.rstrip(".").split("."):
        net = getattr(net, part)
    return net


def select_best(module: SegmentationModule, checkpoint: ModelCheckpoint, ckpt_dir: Path) -> dict[str, float]:
    """Load the best epoch's weights into the exported network (``module.model``, or the one
    ``module.export_prefix`` names), in eval mode; returns that epoch's metrics row.

    Raises:
        ModelError: training wrote no checkpoint.
    """
    best_path = Path(checkpoint.best_model_path) if checkpoint.best_model_path else ckpt_dir / "last.ckpt"
    if not best_path.is_file():
        raise ModelError(
            "training produced no checkpoint", path=ckpt_dir, fix="check the logs in the run folder"
        )
    best_row = max(module.history, key=lambda r: r["val_dice"] if not math.isnan(r["val_dice"]) else -1.0)
    prefix = getattr(module, "export_prefix", "model.")
    net = exported_network(module)
    net.load_state_dict(_state_from_checkpoint(best_path, prefix))
    net.eval()
    return best_row


def export_model(
    cfg: Config,
    spec: ModelSpec,
    model: nn.Module,
    folder: Path,
    summary: dict[str, Any],
    train_records: Sequence[Record],
    val_records: Sequence[Record],
) -> ModelMeta:
    """Save ``model`` as a model folder with what prediction needs, its training summary and data hashes."""
    d = cfg.data
    meta = ModelMeta(
        arch=spec.arch,
        encoder=spec.encoder,
        image_size=d.image_size,
        threshold=cfg.train.threshold,
        mpp=d.mpp,
    )
    meta.summary = {
        k: summary[k] for k in ("seed", "epochs", "best_epoch", "train_loss", "val_dice", "val_jaccard")
    }
    meta.trained_on = training_data_hashes(train_records, val_records)  # checked when reused as a Teacher
    save_model_folder(model, folder, meta)
    return meta


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


def evaluate_run(
    cfg: Config,
    model: nn.Module,
    meta: ModelMeta,
    run_dir: Path,
    val_records: Sequence[Record],
    test_records: Sequence[Record],
    *,
    precision: str,
    selected_val_dice: float,
    reporter: Reporter | None = None,
    phase: str = "evaluation",
    select_records: Sequence[Record] = (),
) -> dict[str, Any]:
    """Score the selected model at native resolution on validation (and test, and selection) images.

    Writes ``val_per_image.csv``, ``test_per_image.csv``, ``select_per_image.csv`` and ``pred/``; returns the
    summary keys ``val``, ``scoring``, ``test_dice``, ``test_jaccard`` (and ``test``; ``select``,
    ``select_dice`` and ``select_jaccard`` when ``select_records`` are given: the images that choose between
    methods, scored here only, after every decision of the run). Scored exactly as the epochs were (see
    training/evaluate.py): no TTA, the Trainer's precision, memory format and validation batch size; so
    ``val["dice"]`` is the selected epoch's validation Dice. ``reporter`` shows it as the phase ``phase``.
    """
    d = cfg.data
    reporter = reporter or Reporter()
    total, done = len(val_records) + len(test_records) + len(select_records), 0
    reporter.start(phase, total, "image")

    def on_images(n: int) -> None:
        nonlocal done
        done += n
        reporter.update(done, f"{done}/{total} images")

    same_as_epochs: dict[str, Any] = {
        "batch_size": d.batch_size,
        "tta": False,
        "precision": precision,
        "channels_last": cfg.train.channels_last,
        "on_images": on_images,
    }
    val_rows = evaluate_records(
        model, meta, val_records, d.mat_variable, pred_dir=run_dir / "pred" / "val", **same_as_epochs
    )
    write_per_image_csv(run_dir / "val_per_image.csv", val_rows)
    val_stats = summarise_rows(val_rows)
    out: dict[str, Any] = {
        "val": val_stats,
        "scoring": {"tta": False, "precision": precision, "resize": "probabilities"},
    }
    if val_rows:
        warn_if_scores_differ(float(val_stats["dice"]), selected_val_dice)  # type: ignore[arg-type]
    out["test_dice"] = out["test_jaccard"] = None
    if test_records:
        test_rows = evaluate_records(
            model, meta, test_records, d.mat_variable, pred_dir=run_dir / "pred" / "test", **same_as_epochs
        )
        write_per_image_csv(run_dir / "test_per_image.csv", test_rows)
        test_stats = summarise_rows(test_rows)
        out["test"] = test_stats
        out["test_dice"] = test_stats["dice"]
        out["test_jaccard"] = test_stats["jaccard"]
    if select_records:
        select_rows = evaluate_records(model, meta, select_records, d.mat_variable, **same_as_epochs)
        write_per_image_csv(run_dir / "select_per_image.csv", select_rows)
        select_stats = summarise_rows(select_rows)
        out["select"] = select_stats
        out["select_dice"] = select_stats["dice"]
        out["select_jaccard"] = select_stats["jaccard"]
    write_pred_index(run_dir / "pred", [r.id for r in (*val_records, *test_records)])
    reporter.finish()
    return out
