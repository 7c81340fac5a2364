"""The sections of the ways of using unlabelled images: the study's loop (``selftrain``: pseudo-label
confidence, the Student), the online methods (``selftrain.online``) and in-domain pretraining (``pretrain``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from teachseg.config.base import ArchName, EncoderName, _Section


class ConfidenceConfig(_Section):
    """How soft pseudo-labels weigh each pixel."""

    mode: Literal["linear", "threshold", "none"] = Field(
        "linear",
        description="linear: weight=|2p-1|; threshold: ignore pixels below `threshold`; none: weight 1",
    )
    threshold: float = Field(
        0.6, ge=0.5, lt=1.0, description="confidence max(p,1-p) needed in threshold mode"
    )


class StudentConfig(_Section):
    """The Student of self-training, where it differs from the Teacher."""

    arch: ArchName | None = Field(None, description="defaults to the teacher's")
    encoder: EncoderName | None = None
    encoder_weights: str | None = None
    init_from_teacher: bool = False
    epochs: int | None = Field(None, description="defaults to train.epochs (train.stop: epochs only)")
    strong_augment: bool = Field(True, description="Noisy Student: stronger colour and crop noise")
    dropout: float = Field(0.0, ge=0.0, lt=1.0)


#: The ways of using unlabelled images that ``selftrain.method`` and ``experiment.methods`` choose from.
METHODS = ("teacher_student", "mean_teacher", "fixmatch", "supervised", "pretrain")
#: The methods that learn from unlabelled images during training (one generation, no pseudo-label files).
ONLINE_METHODS = ("mean_teacher", "fixmatch")
Method = Literal["teacher_student", "mean_teacher", "fixmatch", "supervised", "pretrain"]


class OnlineConfig(_Section):
    """Settings of the online methods (``mean_teacher``, ``fixmatch``)."""

    unlabelled_weight: float = Field(1.0, ge=0.0, description="weight of the unlabelled loss once ramped up")
    rampup_epochs: float = Field(5.0, ge=0.0, description="epochs of the sigmoid ramp-up of that weight")
    ema_decay: float = Field(0.99, ge=0.0, lt=1.0, description="decay of the EMA teacher")
    confidence: float = Field(
        0.95, description="fixmatch: teacher confidence max(p, 1-p) a pixel needs to be a target, in (0.5, 1)"
    )
    teacher: Literal["ema", "model"] = Field(
        "model", description="fixmatch: who predicts the weak view (UniMatch: the model itself)"
    )
    evaluate: Literal["auto", "ema", "model"] = Field(
        "auto", description="network validated and exported; auto: the EMA for mean_teacher, else the model"
    )
    cutmix_p: float = Field(0.5, ge=0.0, le=1.0, description="fixmatch: probability of a CutMix box")
    feature_dropout: float = Field(
        0.0, ge=0.0, lt=1.0, description="fixmatch: UniMatch's dropout on encoder features (0: off)"
    )
    two_strong: bool = Field(False, description="fixmatch: UniMatch's second strong view")
    strength: float = Field(1.0, ge=0.0, le=3.0, description="scale of the strong photometric augmentation")
    modality: Literal["auto", "ultrasound", "he", "generic"] = Field(
        "auto",
        description="strong augmentation flavour; auto: decided once per dataset from all its images "
        "(ultrasound when most are grey, else he), recorded in split.json",
    )
    unlabelled_batch_size: int | None = Field(None, ge=1, description="defaults to data.batch_size")
    epoch_over: Literal["labelled", "unlabelled"] = Field(
        "labelled",
        description="what one epoch passes over: the labelled images (the supervised baseline's optimiser "
        "steps) or the unlabelled ones (FixMatch's and UniMatch's convention: about unlabelled/labelled times "
        "the steps, the labelled images cycled)",
    )

    @field_validator("confidence")
    @classmethod
    def _confidence_open_interval(cls, v: float) -> float:
        if not 0.5 < v < 1.0:
            raise ValueError(
                f"the confidence threshold must be in (0.5, 1), got {v}: at 0.5 every pixel passes, at 1 none"
            )
        return v


class SelfTrainConfig(_Section):
    """How unlabelled images are used: the study's teacher -> pseudo-labels -> student loop and its
    replacement rule, or an online method (``method``)."""

    method: Method = Field(
        "teacher_student",
        description="teacher_student (the study's loop), mean_teacher, fixmatch, supervised (labelled only), or "
        "pretrain (self-supervised pretraining of the encoder on the training images, then supervised fine-tuning)",
    )
    online: OnlineConfig = Field(default_factory=OnlineConfig)
    teacher_model: Path | None = Field(
        None, description="start from this model folder instead of training gen 0"
    )
    student: StudentConfig = Field(default_factory=StudentConfig)
    pseudo_weight: float = Field(1.0, ge=0.0, description="loss weight of pseudo-labelled images")
    confidence: ConfidenceConfig = Field(default_factory=ConfidenceConfig)
    tta: bool = Field(True, description="average flipped predictions for pseudo-labels")
    backend: Literal["torch", "auto", "openvino", "onnx"] = Field(
        "torch",
        description="engine writing pseudo-labels: torch (the default, as before), auto (OpenVINO on a CPU when "
        "installed, else torch), openvino or onnx",
    )
    min_delta: float = Field(0.0, ge=0.0)
    patience: int = Field(1, ge=1, description="generations without gain before stopping")
    max_generations: int = Field(3, ge=1)
    skip_bad: bool = False


class PretrainConfig(_Section):
    """In-domain self-supervised pretraining of the encoder (``teachseg pretrain``, ``selftrain.method: pretrain``,
    ``model.encoder_weights: pretrain``) on the run's training images, labelled and unlabelled, never on held-out
    ones. See :mod:`teachseg.pretrain`."""

    objective: Literal["densecl", "simclr"] = Field(
        "densecl",
        description="densecl (dense contrastive: global + per-location, suits segmentation) or simclr (global)",
    )
    epochs: int = Field(100, ge=1, description="passes over the training images")
    batch_size: int = Field(32, ge=2, description="images per step (two views each)")
    lr: float = Field(1e-3, gt=0, description="AdamW learning rate (cosine decay over every step)")
    weight_decay: float = Field(1e-4, ge=0)
    temperature: float = Field(
        0.5, gt=0, description="of the contrastive (NT-Xent) losses (lightly's default)"
    )
    image_size: int | None = Field(
        None, ge=32, description="side of the views; defaults to data.image_size (the fine-tuning input)"
    )
    memory_bank: int = Field(
        0, ge=0, description="densecl: negatives kept from earlier steps (0: the batch's own negatives only)"
    )
    dense_weight: float = Field(0.5, ge=0.0, le=1.0, description="densecl: weight of the dense loss term")
    modality: Literal["auto", "ultrasound", "he", "generic"] = Field(
        "auto",
        description="augmentation flavour; auto: ultrasound for grey images (no colour, no vertical flips or "
        "rotations), else he (stain colour jitter, flips and 90-degree rotations)",
    )

    @field_validator("image_size")
    @classmethod
    def _size_multiple_of_32(cls, v: int | None) -> int | None:
        if v is not None and v % 32:
            raise ValueError(f"pretrain.image_size {v} is not a multiple of 32; use {v // 32 * 32 or 32}")
        return v
