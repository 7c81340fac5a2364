"""Typed run files: the JSON that training, self-training and prediction write, and reports read.

Each file is one pydantic model with a ``schema_version``. Writers build the model (so a misspelt key fails
where it is written, not in a report weeks later); readers get attributes, not chains of ``dict.get``. Unknown
keys are kept (``extra="allow"``) so a file written with extra information still loads. A file without
``schema_version`` was written by teachseg 0.1 and is migrated on read (its keys are the same); a file from a
newer teachseg is refused with a clear error rather than misread.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from teachseg.errors import DataError

#: The schema version every run file is written with. Raise it (and add a step to ``_migrate``) when a field
#: changes meaning or is renamed; adding an optional field does not need a new version.
SCHEMA_VERSION = 1

R = TypeVar("R", bound="RunFile")

#: A JSON number kept as written: a field typed ``float`` alone would turn ``10`` into ``10.0`` and so change
#: the file on a read-and-write round trip.
Number = int | float


class RunFileError(DataError):
    """A run file that cannot be read: corrupt JSON, wrong types, or written by a newer teachseg."""

    def __init__(self, message: str, *, path: str | Path | None = None, fix: str | None = None):
        super().__init__(message, path=path, fix=fix)
        self.message = message  # without the path and fix, for readers that warn rather than fail


class NewerSchemaError(RunFileError):
    """A run file written by a newer teachseg (its ``schema_version`` is above :data:`SCHEMA_VERSION`)."""


def _finite_or_none(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


class RunFile(BaseModel):
    """Base of every run file: schema version, tolerant of unknown keys, atomic JSON writes."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    #: The file name inside its folder (``summary.json`` ...); set by subclasses.
    FILE: ClassVar[str] = ""

    schema_version: int = SCHEMA_VERSION

    @classmethod
    def from_data(cls: type[R], data: Any, *, path: Path | None = None) -> R:
        """Validate ``data`` (already parsed JSON), migrating files from older versions."""
        where = path if path is not None else Path(cls.FILE or "run file")
        if isinstance(data, cls):  # already typed (a writer's return value)
            return data
        if not isinstance(data, dict):
            raise RunFileError(
                f"{cls.FILE or 'run file'} is not a JSON object",
                path=where,
                fix="restore the file or rerun the command that wrote it",
            )
        version = data.get("schema_version", 0)
        if not isinstance(version, int) or isinstance(version, bool) or version < 0:
            raise RunFileError(
                f"schema_version must be a whole number, got {version!r}",
                path=where,
                fix="restore the file or rerun the command that wrote it",
            )
        if version > SCHEMA_VERSION:
            raise NewerSchemaError(
                f"written by a newer teachseg (schema {version}; this one reads up to {SCHEMA_VERSION})",
                path=where,
                fix="upgrade teachseg (pip install -U teachseg) to read this run folder",
            )
        try:
            return cls.model_validate(_migrate(dict(data), version))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "(top level)"
            raise RunFileError(
                f"{cls.FILE or 'run file'} does not match its schema: {field}: {first['msg']}",
                path=where,
                fix="restore the file or rerun the command that wrote it",
            ) from None

    @classmethod
    def read(cls: type[R], path: str | Path) -> R:
        """Read and validate a file; every failure is a :class:`RunFileError` naming it."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunFileError(
                f"{path.name} is missing", path=path, fix="rerun the command that writes it (or --resume)"
            ) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise RunFileError(
                f"{path.name} is not valid JSON ({type(exc).__name__})",
                path=path,
                fix="restore the file or rerun the command that wrote it",
            ) from None
        return cls.from_data(data, path=path)

    def to_data(self) -> dict[str, Any]:
        """Plain JSON-ready data (non-finite floats become null, as ``teachseg.io.write_json`` writes them).

        Only the keys that were given (or read) are written, ``schema_version`` first: a writer that builds
        the model with the keys it wrote as a dict writes the same file, plus the version.
        """
        given = self.model_dump(mode="python", exclude_unset=True)
        full = self.model_dump(mode="python")
        fields = type(self).model_fields
        # a list or dict default filled in place (``lineage.generations.append``) counts as given
        changed = {
            k
            for k, f in fields.items()
            if k not in given and full[k] != f.get_default(call_default_factory=True)
        }
        ordered = {k: given[k] if k in given else full[k] for k in fields if k in given or k in changed}
        ordered.pop("schema_version", None)
        extra = {k: v for k, v in given.items() if k not in fields}
        return _clean({"schema_version": self.schema_version, **ordered, **extra})

    def write(self, path: str | Path) -> Path:
        """Write atomically (a temporary file renamed into place)."""
        from teachseg.io import write_json

        path = Path(path)
        write_json(path, self.to_data())
        return path


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return _finite_or_none(value)


def _migrate(data: dict[str, Any], version: int) -> dict[str, Any]:
    """Bring ``data`` from ``version`` up to :data:`SCHEMA_VERSION`."""
    if version == 0:  # teachseg 0.1: the same keys, no version field
        data["schema_version"] = 1
    return data


# --- scores ---------------------------------------------------------------------------------------------


class ClassScores(BaseModel):
    """Mean scores of the images of one class (BUSI's benign/malignant/normal)."""

    model_config = ConfigDict(extra="allow")
    n: int
    dice: Number | None = None
    jaccard: Number | None = None


class SplitScores(BaseModel):
    """Per-image means (and pooled scores) over one split, as ``teachseg.metrics.summarise`` returns them."""

    model_config = ConfigDict(extra="allow")
    n: int = 0
    dice: Number | None = None
    jaccard: Number | None = None
    precision: Number | None = None
    recall: Number | None = None
    pooled_dice: Number | None = None
    pooled_jaccard: Number | None = None
    pooled_precision: Number | None = None
    pooled_recall: Number | None = None
    per_class: dict[str, ClassScores] | None = None


# --- training -------------------------------------------------------------------------------------------


class TrainSummary(RunFile):
    """``summary.json`` of one trained model (a ``train`` run or one self-training generation)."""

    FILE: ClassVar[str] = "summary.json"

    arch: str
    encoder: str
    encoder_weights: str | None = None
    seed: int | None = None
    epochs: int | None = None
    best_epoch: int | None = None
    train_loss: Number | None = None
    val_loss: Number | None = None
    val_dice: Number | None = None
    val_jaccard: Number | None = None
    final_train_loss: Number | None = None
    n_train: int | None = None
    n_pseudo: int | None = None
    n_val: int | None = None
    n_test: int | None = None
    image_size: int | None = None
    precision: str | None = None
    wall_seconds: Number | None = None
    images_per_second: Number | None = None
    model_dir: str | None = "model"
    val: SplitScores | None = None
    test: SplitScores | None = None
    test_dice: Number | None = None
    test_jaccard: Number | None = None
    # the selection images (data.select_fraction): scored once at the end, read by no decision of the run
    select: SplitScores | None = None
    select_dice: Number | None = None
    select_jaccard: Number | None = None
    scoring: dict[str, Any] | None = None
    # how long it trained and why it stopped (train.stop): optimiser steps, the best validation's step, and
    # {"rule": "converge" | "epochs", "stopped_by": "patience" | "max_steps" | "epochs", settings ...}
    steps: int | None = None
    best_step: int | None = None
    stop: dict[str, Any] | None = None
    # the training augmentation: "weak", "weak+noisy-student", "weak+strong:<modality>"
    augmentation: str | None = None
    # set for the Students of a self-training run
    generation: int | None = None
    teacher: str | None = None
    # set for an external Teacher re-scored on this run's images (teachseg.selftrain.external)
    external_model: str | None = None
    teacher_sha256: str | None = None
    own_val_dice: Number | None = None
    scored_on: str | None = None
    # set by the methods other than the offline Teacher-Student loop
    method: str | None = None


class GenerationEntry(BaseModel):
    """One generation in ``lineage.json``: who trained, how it scored, and the replacement decision."""

    model_config = ConfigDict(extra="allow")
    generation: int
    role: str
    arch: str | None = None
    encoder: str | None = None
    seed: int | None = None
    train_loss: Number | None = None
    val_dice: Number | None = None
    val_jaccard: Number | None = None
    test_dice: Number | None = None
    test_jaccard: Number | None = None
    best_epoch: int | None = None
    wall_seconds: Number | None = None
    run_dir: str | None = None
    pseudo: dict[str, Any] | None = None
    decision: str | None = None
    accepted: bool | None = None
    gain: Number | None = None
    steps: int | None = None
    best_step: int | None = None

    @classmethod
    def of(
        cls, generation: int, role: str, summary: TrainSummary, run_dir: str, **more: Any
    ) -> GenerationEntry:
        """The entry of a trained (or re-scored) model from its summary."""
        keys = (
            "arch",
            "encoder",
            "seed",
            "train_loss",
            "val_dice",
            "val_jaccard",
            "test_dice",
            "test_jaccard",
        )
        return cls(
            generation=generation,
            role=role,
            best_epoch=summary.best_epoch,
            wall_seconds=summary.wall_seconds,
            run_dir=run_dir,
            **{k: getattr(summary, k) for k in keys},
            # only where the summary has them (summaries written before steps were recorded do not)
            **{k: getattr(summary, k) for k in ("steps", "best_step") if getattr(summary, k) is not None},
            **more,
        )


class Lineage(RunFile):
    """``lineage.json`` of a self-training run, rewritten after every generation."""

    FILE: ClassVar[str] = "lineage.json"

    generations: list[GenerationEntry] = Field(default_factory=list)
    final_generation: int = 0
    skipped_bad: list[Any] = Field(default_factory=list)
    unlabelled_excluded: int = 0
    stopped_because: str | None = None

    def entry(self, generation: int) -> GenerationEntry | None:
        """The entry of ``generation``, if it was recorded."""
        return next((g for g in self.generations if g.generation == generation), None)

    def students(self) -> list[GenerationEntry]:
        """The Students the loop trained, in order (the online methods and ``supervised`` have none)."""
        return sorted((g for g in self.generations if g.role == "student"), key=lambda g: g.generation)

    def cap_ended_loop(self, patience: int) -> bool:
        """Whether ``selftrain.max_generations`` ended this loop while it could still go on: it trained at
        least one Student and fewer than ``patience`` Students in a row at its end were rejected (with that
        many, the loop stops for no gain whatever the cap)."""
        students = self.students()
        trailing_rejected = 0
        for student in reversed(students):
            if student.accepted:
                break
            trailing_rejected += 1
        return bool(students) and trailing_rejected < patience


class SelftrainSummary(RunFile):
    """``summary.json`` of a self-training run (written when it ends)."""

    FILE: ClassVar[str] = "summary.json"

    final_model: str
    final_generation: int
    teacher: TrainSummary | None = None
    best_student: TrainSummary | None = None
    stopped_because: str = ""
    n_labelled: int = 0
    n_unlabelled: int = 0
    wall_seconds: Number | None = None
    # optimiser steps of every model the run trained (a Teacher and its Students), and how many models its
    # validation Dice was the best of (1 + Students for teacher_student, else 1)
    total_steps: int | None = None
    models_compared: int | None = None
    # the dataset's modality (split.json), which decides the strong augmentation of every arm and seed
    modality: str | None = None
    # ``method`` (teacher_student, mean_teacher, fixmatch, supervised) is an extra key: 0.1 files lack it


class EvaluateSummary(RunFile):
    """``summary.json`` of ``teachseg evaluate``: which model on which folder, and its scores."""

    FILE: ClassVar[str] = "summary.json"

    model: str
    data: str
    tta: bool = False
    backend: str | None = None  # the inference engine (torch, onnx, openvino)
    inference_precision: str | None = None  # the precision it ran at (fp32, bf16, fp16)
    n: int = 0
    dice: Number | None = None
    jaccard: Number | None = None
    precision: Number | None = None
    recall: Number | None = None
    pooled_dice: Number | None = None
    pooled_jaccard: Number | None = None
    pooled_precision: Number | None = None
    pooled_recall: Number | None = None
    per_class: dict[str, ClassScores] | None = None


# --- prediction -----------------------------------------------------------------------------------------


class PredictSummary(RunFile):
    """``NAME_summary.json`` that ``teachseg predict`` writes last for each slide or image."""

    FILE: ClassVar[str] = "NAME_summary.json"

    input: str
    kind: str
    reader: str | None = None
    width: int
    height: int
    mpp: Number | None = None
    model: dict[str, Any] = Field(default_factory=dict)
    threshold: Number | None = None
    mpp_used: Number | None = None
    mpp_source: str | None = None
    tiles_predicted: int | None = None
    tumour_area_px: Number | None = None
    tumour_area_mm2: Number | None = None
    outputs: dict[str, str] = Field(default_factory=dict)
    no_tissue: bool | None = None  # slides only
    polygons: int | None = None  # slides only
    tumour_fraction: Number | None = None  # images only
    seconds: Number | None = None
    warnings: list[str] | None = None
    note: str | None = None
    #: what made these outputs: the hash of ``prediction``, the model and settings that decide them (see
    #: :mod:`teachseg.inference.identity`); absent from summaries written before teachseg recorded it
    identity: str | None = None
    prediction: dict[str, Any] | None = None
    #: the size in bytes of each file in ``outputs`` when it was written (a set whose files were replaced
    #: since is not complete)
    output_bytes: dict[str, int] | None = None


class PredictIdentity(RunFile):
    """``predict_identity.json``: the model and settings of the last ``teachseg predict`` run in a folder,
    written before its first input is predicted (``--resume`` refuses a folder of another identity)."""

    FILE: ClassVar[str] = "predict_identity.json"

    identity: str
    prediction: dict[str, Any]
