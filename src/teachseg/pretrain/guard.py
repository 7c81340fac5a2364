"""Refusing a pretrained encoder that saw images this run holds out, as an external Teacher is refused
(:mod:`teachseg.selftrain.external`).

An encoder pretrained on a validation or test image has learnt features of the very images that choose the
epoch and report the result, so the scores would be optimistic. A weights file with a ``pretrain.json`` beside
it (written by ``teachseg pretrain``) records the content hash of every image it saw; it is checked against
every held-out image of this run's split (:func:`teachseg.pretrain.pool.held_out_records`). Images whose exact
pixels are also in this run's training pool are not counted (``data.duplicates: off`` lets copies straddle
splits; the run trains on those pixels anyway). Weights without a record (from elsewhere) cannot be checked
and are used as before.
"""

from __future__ import annotations

from pathlib import Path

from teachseg.data.datasets import Record
from teachseg.errors import ConfigError
from teachseg.models import PRETRAINED_ENCODER
from teachseg.pretrain.pool import content_hashes, held_out_records, pool_records
from teachseg.pretrain.record import PretrainRecord
from teachseg.training.identity import file_sha256
from teachseg.training.prepare import PreparedData


def weights_file(weights: str | Path) -> Path:
    """The weights file of ``weights``: itself, or the ``encoder.safetensors`` of a pretrain folder."""
    path = Path(weights)
    return path / PRETRAINED_ENCODER if path.is_dir() else path


def pretrain_leaks(record: PretrainRecord, data: PreparedData) -> list[Record]:
    """This run's held-out images whose content the pretraining of ``record`` saw (sorted by id)."""
    seen = set(record.images) - set(content_hashes(pool_records(data)))
    return [r for r in held_out_records(data) if file_sha256(r.image) in seen]


def check_pretrained_encoder(
    weights: str | Path | None, encoder: str, data: PreparedData, key: str = "model.encoder_weights"
) -> PretrainRecord | None:
    """Check the pretrained encoder ``weights`` (set as ``key``) against this run; its record, or None for
    weights without one.

    Raises:
        ConfigError: the record describes other weights or another encoder, or the pretraining saw held-out
            images of this run (how many, the first few named, and the fix).
    """
    found = PretrainRecord.beside(weights)
    if found is None or weights is None:
        return None
    record_path, record = found
    file = weights_file(weights)
    if record.encoder != encoder:
        raise ConfigError(
            f"{key} was pretrained for encoder '{record.encoder}', but this run's encoder is '{encoder}'",
            path=file,
            fix=f"pretrain {encoder} (`teachseg pretrain CONFIG`, or set {key}: pretrain)",
        )
    if not file.is_file() or file_sha256(file) != record.encoder_sha256:
        raise ConfigError(
            f"the weights are not the ones {record_path.name} beside them describes (their hash differs), so "
            "what they saw cannot be checked",
            path=file,
            fix="restore the pretrain folder as `teachseg pretrain` wrote it, or pretrain again",
        )
    leaks = pretrain_leaks(record, data)
    if leaks:
        names = [str(r.image) for r in leaks]
        more = f" and {len(names) - 5} more" if len(names) > 5 else ""
        raise ConfigError(
            f"the pretrained encoder saw {len(leaks)} image(s) this run holds out (validation, test, or an image "
            f"of their groups): {', '.join(names[:5])}{more}; its features would make this run's scores "
            "optimistic",
            path=file,
            fix="pretrain with this run's config and seed (`teachseg pretrain CONFIG`, or set "
            f"{key}: pretrain to make or reuse it), or use other weights",
        )
    return record
