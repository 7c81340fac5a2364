"""The settings: one pydantic model per config section, with its defaults and checks.

Unknown keys are errors (a typo must never be silently ignored). Names (architecture, encoder, precision,
accelerator, strategy) are checked when a config loads, with a did-you-mean list (:mod:`teachseg.names`),
so a typo fails before any data is read. The shared base and the checked names are in :mod:`.base`; the
sections of the ways of using unlabelled images in :mod:`.methods` (re-exported here).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from teachseg import names
from teachseg.config.base import (
    AcceleratorName,
    ArchName,
    EncoderName,
    PrecisionSetting,
    StrategyName,
    _Section,
)
from teachseg.config.methods import (
    METHODS,
    ONLINE_METHODS,
    ConfidenceConfig,
    Method,
    OnlineConfig,
    PretrainConfig,
    SelfTrainConfig,
    StudentConfig,
)

__all__ = [
    "METHODS",
    "ONLINE_METHODS",
    "AcceleratorName",
    "ArchName",
    "AugmentConfig",
    "ConfidenceConfig",
    "Config",
    "ConvergeConfig",
    "DataConfig",
    "EncoderName",
    "ExperimentConfig",
    "LossConfig",
    "Method",
    "ModelConfig",
    "OnlineConfig",
    "PrecisionSetting",
    "PretrainConfig",
    "SelfTrainConfig",
    "StrategyName",
    "StudentConfig",
    "TrainConfig",
]


class AugmentConfig(_Section):
    """Joint image + mask augmentation for training."""

    hflip: bool = True
    vflip: bool = True
    rot90: bool = True
    color_jitter: float = Field(0.1, ge=0.0, le=1.0, description="brightness/contrast/saturation strength")
    crop_scale_min: float = Field(0.6, gt=0.0, le=1.0, description="random resized crop: smallest area share")
    enabled: bool = True


class DataConfig(_Section):
    """Where the images are, how they are split, and how they are loaded."""

    root: Path | None = Field(None, description="dataset folder (images/+masks/, BUSI, .mat, ...)")
    unlabelled_dirs: list[Path] = Field(
        default_factory=list, description="extra folders of unlabelled images"
    )
    layout: Literal["auto", "pairs", "busi", "unlabelled"] = "auto"
    images_dir: Path | None = Field(
        None,
        description="folder of the images, any name (relative paths are inside root); set with masks_dir",
    )
    masks_dir: Path | None = Field(
        None,
        description="folder of the masks, matched to images by name (optionally + _mask), any extension",
    )
    mat_variable: str | None = Field(
        None, description="variable holding the mask in .mat files (auto if null)"
    )
    val_fraction: float = Field(0.05, ge=0.0, lt=1.0)
    test_fraction: float = Field(0.0, ge=0.0, lt=1.0)
    select_fraction: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="share of the labelled images held out to choose between methods (0: none); drawn like "
        "val/test, scored by every run, read by no decision inside a run",
    )
    group_regex: str | None = Field(
        None,
        description="regex on the file name; its first group (or whole match) keeps a patient/slide together",
    )
    duplicates: Literal["group", "drop", "off"] = Field(
        "group",
        description="images with the same pixels or a perceptual hash within 10 of 64 bits: 'group' keeps each "
        "set in one split, 'drop' keeps one image of each set, 'off' does not look for them",
    )
    label_fraction: float = Field(1.0, gt=0.0, le=1.0, description="share of training images that keep masks")
    image_size: int = Field(256, ge=32)
    mpp: float | None = Field(
        None,
        gt=0,
        description="um/px of the training images as the network sees them, i.e. once resized to image_size "
        "(stored in the model; predict reads slides at it). Unset: from the `data tile` manifests, "
        "their mpp x tile size / image_size",
    )
    batch_size: int = Field(8, ge=1)
    num_workers: int = Field(2, ge=0)
    cache_images: bool = Field(True, description="keep decoded images in RAM after the first epoch")
    augment: AugmentConfig = Field(default_factory=AugmentConfig)

    @field_validator("image_size")
    @classmethod
    def _multiple_of_32(cls, v: int) -> int:
        if v % 32:
            lo, hi = v // 32 * 32, (v // 32 + 1) * 32
            raise ValueError(
                f"image_size {v} is not a multiple of 32 (the encoders downsample 5 times); use {lo or 32} or {hi}"
            )
        return v

    @model_validator(mode="after")
    def _paired_folders(self) -> DataConfig:
        if (self.images_dir is None) != (self.masks_dir is None):
            raise ValueError("set data.images_dir and data.masks_dir together (or neither)")
        if self.images_dir is not None and self.layout not in ("auto", "pairs"):
            raise ValueError(
                f"data.images_dir and data.masks_dir pair two folders; layout {self.layout!r} cannot use "
                "them (set layout to auto or pairs)"
            )
        return self

    @model_validator(mode="after")
    def _fractions(self) -> DataConfig:
        if self.val_fraction + self.test_fraction + self.select_fraction >= 0.9:
            raise ValueError(
                "val_fraction + test_fraction + select_fraction must leave at least 10% of images for training"
            )
        return self


class ModelConfig(_Section):
    """The model every run trains (a Student may change it, see :class:`StudentConfig`)."""

    arch: ArchName = "linknet"
    encoder: EncoderName = "resnet34"
    encoder_weights: str | None = Field(
        None,
        description="'imagenet' (downloaded through smp), null (random), a local weights file or pretrain folder, "
        "or 'pretrain' (this run's in-domain pretraining of the `pretrain` section, made or reused)",
    )
    decoder_dropout: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="channel dropout before the segmentation head of every model trained (Teacher and Student; "
        "a Student uses the larger of this and selftrain.student.dropout); weights and model folders are unchanged",
    )


class LossConfig(_Section):
    """The BCE + Dice loss."""

    bce_weight: float = Field(1.0, ge=0.0)
    dice_weight: float = Field(1.0, ge=0.0)
    dice_smooth: float = Field(1.0, ge=0.0)
    dice_per_image: bool = Field(
        False, description="Dice per image (else pooled over the batch, the default)"
    )

    @model_validator(mode="after")
    def _some_weight(self) -> LossConfig:
        if self.bce_weight == 0 and self.dice_weight == 0:
            raise ValueError("bce_weight and dice_weight cannot both be 0")
        return self


class ConvergeConfig(_Section):
    """When ``train.stop: converge`` ends a training run: validation Dice has stopped improving.

    Validation runs every ``eval_every_steps`` optimiser steps (rounded up to whole epochs, so every checkpoint
    is at an epoch boundary and a resumed run repeats the uninterrupted one), so ``patience`` means the same
    compute at every label fraction. The learning rate is halved (``lr_factor``) after ``lr_patience``
    evaluations without a gain, down to 1% of ``train.lr``; ``max_steps`` only guards against a run that never
    settles (``teachseg experiment`` raises it for ``supervised``, see the README).
    """

    patience: int = Field(10, ge=1, description="evaluations without a validation Dice gain of min_delta")
    min_delta: float = Field(0.001, ge=0.0, description="the validation Dice gain that counts as improving")
    eval_every_steps: int = Field(
        100, ge=1, description="optimiser steps between validations (rounded up to whole epochs)"
    )
    max_steps: int = Field(20000, ge=1, description="cap on one model's optimiser steps")
    lr_patience: int | None = Field(
        None,
        ge=1,
        description="evaluations without a gain before the learning rate is multiplied by lr_factor "
        "(default: a third of patience, at least 1)",
    )
    lr_factor: float = Field(
        0.5, gt=0.0, le=1.0, description="learning-rate decay on a plateau (1: constant)"
    )

    @model_validator(mode="after")
    def _decay_before_stop(self) -> ConvergeConfig:
        if self.lr_factor < 1.0 and self.lr_patience is not None and self.lr_patience >= self.patience:
            raise ValueError(
                f"train.converge.lr_patience ({self.lr_patience}) must be below patience ({self.patience}): "
                "otherwise training stops before the learning rate is ever lowered"
            )
        return self

    @property
    def plateau_patience(self) -> int:
        """Evaluations without a gain before the learning rate decays (``lr_patience`` resolved)."""
        return self.lr_patience if self.lr_patience is not None else max(1, self.patience // 3)


class TrainConfig(_Section):
    """Optimiser, schedule, when to stop, and the Lightning Trainer's settings."""

    stop: Literal["converge", "epochs"] = Field(
        "converge",
        description="converge: until validation Dice stops improving (train.converge); epochs: train.epochs",
    )
    converge: ConvergeConfig = Field(default_factory=ConvergeConfig)
    epochs: int = Field(30, ge=1, description="the length of a run with stop: epochs (unused by converge)")
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    scheduler: Literal["auto", "cosine", "plateau", "none"] = Field(
        "auto",
        description="auto: plateau with stop: converge, cosine over train.epochs with stop: epochs; plateau: "
        "the train.converge.lr_* rule at every validation",
    )
    precision: PrecisionSetting = Field(
        "auto",
        description="auto, fp32, bf16 or fp16 (or Lightning's 32-true, bf16-mixed, 16-mixed), for training, "
        "evaluation and pseudo-labels alike; auto = bf16 on GPUs and CPUs that support it natively, else "
        "fp16 on GPU and fp32 on CPU (see teachseg.precision)",
    )
    channels_last: bool = True
    accelerator: AcceleratorName = "auto"
    devices: int | str = 1
    strategy: StrategyName = "auto"
    num_nodes: int = Field(1, ge=1)
    threshold: float = Field(0.5, gt=0, lt=1)
    limit_train_batches: int | float | None = None
    log_every_n_steps: int = 10
    progress_bar: bool = Field(
        True,
        description="the command's live bars on a terminal (false: whole lines only, like --no-progress)",
    )

    @model_validator(mode="after")
    def _schedule_fits_stop(self) -> TrainConfig:
        if self.stop == "converge" and self.scheduler == "cosine":
            raise ValueError(
                "train.scheduler cosine needs a known length, but train.stop is converge (the run ends when "
                "validation Dice stops improving); use scheduler auto/plateau, or stop: epochs"
            )
        return self

    @property
    def schedule(self) -> str:
        """The learning-rate schedule in effect: ``scheduler`` with ``auto`` resolved."""
        if self.scheduler != "auto":
            return self.scheduler
        return "plateau" if self.stop == "converge" else "cosine"


class ExperimentConfig(_Section):
    """The grid ``teachseg experiment`` runs: architectures x seeds (x methods x label fractions)."""

    archs: list[ArchName] = Field(default_factory=lambda: list(names.STUDY_ARCHS))
    seeds: list[int] = Field(default_factory=lambda: [21, 42, 84])
    student_archs: dict[ArchName, ArchName] = Field(
        default_factory=dict, description="optional teacher->student pairing, e.g. {linknet: fpn}"
    )
    methods: list[Method] = Field(
        default_factory=list,
        description="compare these semi-supervised methods (empty: selftrain.method only, as before)",
    )
    label_fractions: list[float] = Field(
        default_factory=list,
        description="data.label_fraction values to run every method at (empty: data.label_fraction only)",
    )

    @field_validator("label_fractions")
    @classmethod
    def _fractions_in_range(cls, v: list[float]) -> list[float]:
        bad = [f for f in v if not 0.0 < f <= 1.0]
        if bad:
            raise ValueError(f"label fractions must be in (0, 1], got {bad}")
        return sorted(set(v))

    @field_validator("seeds")
    @classmethod
    def _non_empty(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("the seed list is empty; give at least one seed, e.g. [21, 42, 84]")
        return v

    @field_validator("archs")
    @classmethod
    def _archs_non_empty(cls, v: list[names.Arch]) -> list[names.Arch]:
        if not v:
            raise ValueError("the architecture list is empty; give at least one, e.g. [linknet, fpn]")
        return v


class Config(_Section):
    """A whole teachseg job."""

    name: str = "run"
    output_dir: Path = Path("runs")
    seed: int = 42
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    selftrain: SelfTrainConfig = Field(default_factory=SelfTrainConfig)
    pretrain: PretrainConfig = Field(default_factory=PretrainConfig)
    experiment: ExperimentConfig = Field(default_factory=ExperimentConfig)

    @property
    def run_dir(self) -> Path:
        """``output_dir / name``: the folder this config's run writes."""
        return self.output_dir / self.name

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON types (paths as strings)."""
        return json.loads(self.model_dump_json())

    def to_yaml(self) -> str:
        """The config as YAML, keys in definition order (what ``config.yaml`` holds)."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def hash(self) -> str:
        """12 hex digits of the SHA-256 of the whole config (sorted keys)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]
