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


class RunFileError(DataError):
    """A run file that cannot be read: corrupt JSON, wrong types, or written by a newer teachseg."""


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
            raise RunFileError(
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
        """Plain JSON-ready data (non-finite floats become null, as ``teachseg.io.write_json`` writes them)."""
        data = self.model_dump(mode="python", exclude_none=False)
        return _clean(data)

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
    dice: float | None = None
    jaccard: float | None = None


class SplitScores(BaseModel):
    """Per-image means (and pooled scores) over one split, as ``teachseg.metrics.summarise`` returns them."""

    model_config = ConfigDict(extra="allow")
    n: int = 0
    dice: float | None = None
    jaccard: float | None = None
    precision: float | None = None
    recall: float | None = None
    pooled_dice: float | None = None
    pooled_jaccard: float | None = None
    pooled_precision: float | None = None
    pooled_recall: float | None = None
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
    train_loss: float | None = None
    val_loss: float | None = None
    val_dice: float | None = None
    val_jaccard: float | None = None
    final_train_loss: float | None = None
    n_train: int | None = None
    n_pseudo: int | None = None
    n_val: int | None = None
    n_test: int | None = None
    image_size: int | None = None
    precision: str | None = None
    wall_seconds: float | None = None
    images_per_second: float | None = None
    model_dir: str | None = "model"
    val: SplitScores | None = None
    test: SplitScores | None = None
    test_dice: float | None = None
    test_jaccard: float | None = None
    scoring: dict[str, Any] | None = None
    # set for the Students of a self-training run
    generation: int | None = None
    teacher: str | None = None


class GenerationEntry(BaseModel):
    """One generation in ``lineage.json``: who trained, how it scored, and the replacement decision."""

    model_config = ConfigDict(extra="allow")
    generation: int
    role: str
    arch: str | None = None
    encoder: str | None = None
    seed: int | None = None
    train_loss: float | None = None
    val_dice: float | None = None
    val_jaccard: float | None = None
    test_dice: float | None = None
    test_jaccard: float | None = None
    best_epoch: int | None = None
    wall_seconds: float | None = None
    run_dir: str | None = None
    pseudo: dict[str, Any] | None = None
    decision: str | None = None
    accepted: bool | None = None
    gain: float | None = None

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
    wall_seconds: float | None = None


# --- prediction -----------------------------------------------------------------------------------------


class PredictSummary(RunFile):
    """``NAME_summary.json`` that ``teachseg predict`` writes last for each slide or image."""

    FILE: ClassVar[str] = "NAME_summary.json"

    input: str
    kind: str
    reader: str | None = None
    width: int
    height: int
    mpp: float | None = None
    model: dict[str, Any] = Field(default_factory=dict)
    threshold: float | None = None
    mpp_used: float | None = None
    mpp_source: str | None = None
    tiles_predicted: int | None = None
    tumour_area_px: float | None = None
    tumour_area_mm2: float | None = None
    outputs: dict[str, str] = Field(default_factory=dict)
    seconds: float | None = None
    warnings: list[str] | None = None
    note: str | None = None
