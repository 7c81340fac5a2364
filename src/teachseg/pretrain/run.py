"""One pretraining: the encoder learns from a pool of images with an objective, resumably, and the folder it
writes (``encoder.safetensors``, ``pretrain.json``).

The folder also holds ``pretrain_identity.json`` (what this pretraining is, written first, so ``--resume``
refuses a folder of another one), ``checkpoints/last.ckpt`` while it runs (Lightning's, written atomically at
the end of every epoch, loaded with ``weights_only``; deleted once the encoder is exported) and ``logs/``.
A SIGKILL at any moment leaves either the previous checkpoint or the finished folder; resuming continues from
the last finished epoch and reaches the encoder an uninterrupted run reaches.
"""

from __future__ import annotations

import inspect
import platform
import shutil
import warnings
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from teachseg.config import Config
from teachseg.data.datasets import EpochSampler, Record
from teachseg.errors import ConfigError, DataError, ModelError
from teachseg.io import atomic_path, read_json, remove_stale_temporaries, write_json
from teachseg.models import PRETRAINED_ENCODER, build_encoder
from teachseg.pretrain.module import PretrainModule
from teachseg.pretrain.objectives import OBJECTIVES, build_objective, deepest
from teachseg.pretrain.record import PretrainRecord
from teachseg.runfiles import NewerSchemaError, RunFileError
from teachseg.training.identity import file_sha256

IDENTITY_FILE = "pretrain_identity.json"
CHECKPOINTS = "checkpoints"
#: the libraries whose versions a record keeps
LIBRARIES = ("lightly", "torch", "lightning", "segmentation_models_pytorch")


class EpochLines(Callback):
    """One line per finished epoch on ``console`` (loss and throughput), as training prints its epochs.

    The module closes an epoch's row in its own ``on_train_epoch_end``, which Lightning calls after the plain
    callbacks' hooks, so the rows are printed when the next epoch starts and when training ends.
    """

    def __init__(self, console: Any, images_per_epoch: int):
        self.console = console
        self.images_per_epoch = images_per_epoch
        self.printed = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.printed = len(getattr(pl_module, "history", []))  # epochs of an earlier, resumed session

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._print_new(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._print_new(trainer, pl_module)

    def _print_new(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        history = getattr(pl_module, "history", [])
        if self.console is None or not trainer.is_global_zero:
            return
        for row in history[self.printed :]:
            speed = self.images_per_epoch / row["seconds"] if row["seconds"] else float("nan")
            self.console.print(
                f"pretrain epoch {int(row['epoch']):>3}/{trainer.max_epochs}  loss {row['loss']:.4f}  "
                f"{speed:.1f} images/s",
                highlight=False,
            )
        self.printed = len(history)


def require_lightly() -> None:
    """Fail with the install command when ``lightly`` (the ``pretrain`` extra) is missing."""
    try:
        import lightly  # noqa: F401
    except ImportError:
        raise ConfigError(
            "pretraining needs the lightly library, which is not installed",
            fix="pip install 'teachseg[pretrain]' (or pip install 'lightly>=1.5')",
        ) from None


def finished(out_dir: Path, identity: str | None = None) -> PretrainRecord | None:
    """The record of the finished pretraining in ``out_dir`` (of ``identity``, when given), or None.

    Finished means ``pretrain.json`` reads and ``encoder.safetensors`` is the file it describes.
    """
    path, weights = out_dir / PretrainRecord.FILE, out_dir / PRETRAINED_ENCODER
    if not path.is_file() or not weights.is_file():
        return None
    try:
        record = PretrainRecord.read(path)
    except NewerSchemaError:
        raise
    except RunFileError:
        return None
    if identity is not None and record.identity != identity:
        return None
    return record if file_sha256(weights) == record.encoder_sha256 else None


def check_identity(out_dir: Path, identity: dict[str, Any]) -> None:
    """Record what ``out_dir`` pretrains, or refuse a folder that holds another pretraining."""
    path = out_dir / IDENTITY_FILE
    if path.is_file():
        try:
            old = read_json(path).get("identity")
        except (OSError, ValueError, AttributeError):
            old = None
        if old != identity["identity"]:
            raise ConfigError(
                f"this folder holds another pretraining (identity {old}, this config and data make "
                f"{identity['identity']}: another encoder, seed, setting or set of images)",
                path=out_dir,
                fix="pass --overwrite to start it again, or write to another folder (--out)",
            )
    write_json(path, identity)


def probe_encoder(encoder: str, size: int, objective: str) -> torch.nn.Module:
    """Build ``encoder`` as smp does and check that ``objective`` can train it at ``size`` px.

    Raises:
        ConfigError: smp cannot build it, it does not return a feature map per stage, or a dense objective would
            see a single location (the deepest map is 1 x 1 at this size).
    """
    try:
        net = build_encoder(encoder)
    except ModelError as exc:
        reason = str(exc).split(". Fix: ")[0]
        raise ConfigError(
            f"encoder '{encoder}' cannot be pretrained: {reason}",
            fix="set model.encoder to a convolutional encoder such as resnet34 (`teachseg models --encoders`)",
        ) from None
    try:
        with torch.no_grad():
            net.eval()
            features = deepest(net, torch.zeros(2, 3, size, size))
            net.train()
    except Exception as exc:
        raise ConfigError(
            f"encoder '{encoder}' cannot be pretrained at {size} px ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:120] if str(exc) else ''})",
            fix="set model.encoder to a convolutional encoder such as resnet34, or another pretrain.image_size",
        ) from None
    if features.ndim != 4 or not hasattr(net, "out_channels"):
        raise ConfigError(
            f"encoder '{encoder}' does not return feature maps, so it cannot be pretrained here",
            fix="set model.encoder to a convolutional encoder such as resnet34",
        )
    if OBJECTIVES[objective].dense and features.shape[2] * features.shape[3] < 2:
        raise ConfigError(
            f"pretrain.objective {objective} compares locations of the deepest feature map, which is "
            f"{features.shape[2]} x {features.shape[3]} at {size} px",
            fix="raise pretrain.image_size (64 or more) or set pretrain.objective: simclr",
        )
    return net


def initial_encoder(encoder: str, seed: int, size: int, objective: str) -> torch.nn.Module:
    """The randomly initialised encoder a pretraining of ``seed`` starts from (every generator seeded first; the
    control of an equal-steps comparison starts from the same weights)."""
    L.seed_everything(seed, workers=True, verbose=False)
    return probe_encoder(encoder, size, objective)


def _trainer_config(cfg: Config) -> Config:
    """``cfg`` for the pretraining's Trainer: one device, every batch (the rest of ``train`` as set)."""
    out = cfg.model_copy(deep=True)
    out.train.devices = 1
    out.train.strategy = "auto"
    out.train.num_nodes = 1
    out.train.limit_train_batches = None
    return out


def _fit(trainer: L.Trainer, module: L.LightningModule, loader: Any, ckpt: Path | None) -> None:
    kwargs: dict[str, Any] = {"ckpt_path": str(ckpt) if ckpt else None}
    if (
        "weights_only" in inspect.signature(trainer.fit).parameters
    ):  # never unpickle objects from a checkpoint
        kwargs["weights_only"] = True
    trainer.fit(module, train_dataloaders=loader, **kwargs)


def _device(trainer: L.Trainer) -> tuple[str, str]:
    dev = trainer.strategy.root_device
    if dev.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(dev)}", "gpu"
    if dev.type != "cpu":
        return dev.type, "gpu"
    return f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads", "cpu"


def _versions() -> dict[str, str]:
    from teachseg import __version__

    found = {"teachseg": __version__}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name.replace("_", "-"))
        except metadata.PackageNotFoundError:
            found[name] = "unknown"
    return found


def export_encoder(encoder: torch.nn.Module, path: Path) -> str:
    """Write the encoder's state dict as safetensors, atomically; returns the file's SHA-256."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt", "producer": "teachseg pretrain"})
    return file_sha256(path)


def pretrain_encoder(
    cfg: Config,
    records: Sequence[Record],
    out_dir: Path,
    *,
    encoder: str,
    settings: dict[str, Any],
    identity: str,
    resume: bool = False,
    console: Any = None,
) -> PretrainRecord:
    """Pretrain ``encoder`` on ``records`` (the run's pool, :func:`teachseg.pretrain.pool.pool_records`) into
    ``out_dir``; return its record. With ``resume`` a finished folder is returned as is and an interrupted one
    continues from its last checkpoint.

    ``settings`` is the resolved ``pretrain`` section (:func:`~teachseg.pretrain.pool.resolved_settings`);
    seed, precision, accelerator, loader workers and ``selftrain.skip_bad`` come from ``cfg``.

    Raises:
        DataError: fewer than 2 readable images, or unreadable ones (without ``selftrain.skip_bad``).
        ConfigError: an encoder this objective cannot pretrain, or a folder holding another pretraining.
    """
    from torch.utils.data import DataLoader

    from teachseg.precision import resolve
    from teachseg.pretrain.views import PretrainViews, load_pool, view_transform
    from teachseg.training.fit import build_trainer

    require_lightly()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if resume:  # what a killed run was writing (checkpoints, the encoder file)
        remove_stale_temporaries(out_dir, recursive=True)
        warnings.filterwarnings("ignore", message=".*exists and is not empty.*")  # the checkpoint resumed
    check_identity(
        out_dir,
        {
            "identity": identity,
            "encoder": encoder,
            "seed": cfg.seed,
            "settings": settings,
            "n_images": len(records),
        },
    )
    done = finished(out_dir, identity)
    if done is not None:
        shutil.rmtree(out_dir / CHECKPOINTS, ignore_errors=True)  # a kill right after the export left them
        return done

    size, objective_name = int(settings["image_size"]), str(settings["objective"])
    images, kept, skipped = load_pool(records, size, skip_bad=cfg.selftrain.skip_bad)
    if len(images) < 2:
        raise DataError(
            f"pretraining needs at least 2 readable training images, and this run has {len(images)}",
            path=cfg.data.root,
            fix="add images (unlabelled ones count, e.g. data.unlabelled_dirs) or lower data.val_fraction",
        )
    net = initial_encoder(encoder, cfg.seed, size, objective_name)
    batch = min(int(settings["batch_size"]), len(images))
    epochs = int(settings["epochs"])
    steps_per_epoch = len(images) // batch  # full batches only: one image alone cannot be contrasted
    objective = build_objective(objective_name, net, settings, epochs * steps_per_epoch)
    module = PretrainModule(
        objective,
        lr=float(settings["lr"]),
        weight_decay=float(settings["weight_decay"]),
        total_steps=epochs * steps_per_epoch,
        channels_last=cfg.train.channels_last,
    )
    workers = cfg.data.num_workers
    loader = DataLoader(
        PretrainViews(images, view_transform(str(settings["modality"]), size), seed=cfg.seed),
        batch_size=batch,
        sampler=EpochSampler(len(images), cfg.seed),
        num_workers=workers,
        persistent_workers=workers > 0,
        drop_last=True,
    )
    ckpt_dir = out_dir / CHECKPOINTS
    last = ckpt_dir / "last.ckpt"
    # no monitored metric: the one checkpoint kept is the latest epoch's, under the name last.ckpt
    checkpoint = ModelCheckpoint(
        dirpath=str(ckpt_dir), filename="last", save_top_k=1, save_last=False, enable_version_counter=False
    )
    trainer_cfg = _trainer_config(cfg)
    trainer = build_trainer(
        trainer_cfg, out_dir, epochs, [checkpoint, EpochLines(console, steps_per_epoch * batch)]
    )
    _fit(trainer, module, loader, last if resume and last.is_file() else None)

    device, kind = _device(trainer)
    encoder_sha = export_encoder(module.encoder, out_dir / PRETRAINED_ENCODER)
    from teachseg.pretrain.pool import content_hashes

    losses = [r["loss"] for r in module.history]
    record = PretrainRecord(
        objective=objective_name,
        encoder=encoder,
        seed=cfg.seed,
        settings=settings,
        identity=identity,
        images=content_hashes(kept),
        image_ids=[r.id for r in kept],
        skipped=skipped,
        epochs=epochs,
        steps=int(trainer.global_step),
        loss_per_epoch=[round(x, 6) for x in losses],
        final_loss=round(losses[-1], 6) if losses else None,
        seconds=round(module.seconds, 2),
        device=device,
        device_kind=kind,
        precision=str(resolve(cfg.train.precision, cfg.train.accelerator)),
        encoder_sha256=encoder_sha,
        versions=_versions(),
    )
    record.write(out_dir / PretrainRecord.FILE)
    shutil.rmtree(ckpt_dir, ignore_errors=True)  # the encoder is final; a checkpoint is ~10x its size
    return record
