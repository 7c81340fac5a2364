"""``pretrain.json``: the typed record of one pretraining (a :class:`~teachseg.runfiles.RunFile`, versioned and
written atomically like every run file), and how a run finds the record of the encoder weights it was given."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from teachseg.runfiles import Number, RunFile


class PretrainRecord(RunFile):
    """``pretrain.json`` beside ``encoder.safetensors``: what a ``teachseg pretrain`` run did, saw and cost.

    ``images`` holds the content hash (SHA-256) of every image in its training pool: a run refuses the encoder
    when any of its held-out images is among them (:mod:`teachseg.pretrain.guard`). ``seconds`` (summed over
    resumed sessions) and ``device_kind`` are its cost, which reports show beside each arm that used it.
    """

    FILE: ClassVar[str] = "pretrain.json"

    objective: str
    encoder: str
    seed: int
    #: the ``pretrain`` config section as resolved (image size and modality filled in)
    settings: dict[str, Any] = Field(default_factory=dict)
    #: hash of encoder, seed, settings and image hashes: a pretraining with the same identity is reused
    identity: str
    images: list[str] = Field(default_factory=list)
    image_ids: list[str] = Field(default_factory=list)
    skipped: list[dict[str, str]] = Field(default_factory=list)
    epochs: int = 0
    steps: int = 0
    loss_per_epoch: list[Number | None] = Field(default_factory=list)
    final_loss: Number | None = None
    seconds: Number | None = None
    device: str = ""
    device_kind: str = "cpu"
    precision: str | None = None
    encoder_sha256: str = ""
    versions: dict[str, str] = Field(default_factory=dict)

    def cost(self) -> str:
        """``"12.5 GPU min"``: the wall time of the pretraining on its kind of device."""
        minutes = (self.seconds or 0.0) / 60.0
        return f"{minutes:.1f} {self.device_kind.upper()} min"

    @classmethod
    def beside(cls, weights: str | Path | None) -> tuple[Path, PretrainRecord] | None:
        """The record of the encoder weights ``weights`` (a file, or a pretrain folder), or None when no
        ``pretrain.json`` lies beside it (weights from elsewhere)."""
        if weights is None or str(weights) in ("imagenet", "pretrain", ""):
            return None
        path = Path(weights)
        record = path / cls.FILE if path.is_dir() else path.with_name(cls.FILE)
        if not record.is_file():
            return None
        return record, cls.read(record)

    @classmethod
    def summary_for(cls, weights: str | Path | None) -> dict[str, Any]:
        """``{"pretrain": {...}}`` for a model's ``summary.json`` when it started from a pretrained encoder
        (what, on which images, at what cost), else ``{}``."""
        found = cls.beside(weights)
        if found is None:
            return {}
        path, rec = found
        from teachseg.training.identity import file_sha256  # runfile readers need not import the hashing

        return {
            "pretrain": {
                "record": str(path),
                "record_sha256": file_sha256(path),
                "identity": rec.identity,
                "objective": rec.objective,
                "epochs": rec.epochs,
                "n_images": len(rec.images),
                "seconds": rec.seconds,
                "device": rec.device,
                "device_kind": rec.device_kind,
            }
        }
