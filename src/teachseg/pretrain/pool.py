"""Which images a pretraining may see, and what makes two pretrainings the same.

The pool is the training side of the run's split: its labelled training images and its unlabelled ones (the
training images whose masks ``data.label_fraction`` withholds, and the unlabelled images outside held-out
groups). Label dropping only moves images between those two lists, and the split draws validation and test
before it (:mod:`teachseg.data.splits`), so the pool depends on the data, the seed and the held-out fractions,
never on ``data.label_fraction``: one pretraining per seed serves every label fraction and every method.

Held out is every discovered image outside the pool: validation and test images, the unlabelled images of their
groups (patients, slides, near-duplicates), dropped duplicates, and any held-out split added later, by
construction rather than by name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from teachseg.config import Config
from teachseg.data.datasets import Record
from teachseg.training.identity import file_sha256
from teachseg.training.prepare import PreparedData

#: Raise when the meaning of a pretraining's identity changes (old caches are then not reused).
IDENTITY_FORMAT = 1


def pool_records(data: PreparedData) -> list[Record]:
    """The images a pretraining of this run may see (without masks), sorted by id."""
    recs = {r.id: Record(id=r.id, image=r.image, cls=r.cls) for r in (*data.train, *data.unlabelled)}
    return [recs[k] for k in sorted(recs)]


def held_out_records(data: PreparedData) -> list[Record]:
    """Every discovered image outside :func:`pool_records`: what no encoder used by this run may have seen."""
    pool = set(data.split.train) | set(data.split.unlabelled)
    return [
        Record(id=s.id, image=s.image, masks=s.masks, cls=s.cls)
        for s in data.discovery.samples
        if s.id not in pool
    ]


def content_hashes(records: Sequence[Record]) -> list[str]:
    """The sorted, distinct SHA-256 of the records' image files."""
    return sorted({file_sha256(r.image) for r in records})


def resolved_settings(cfg: Config, modality: str) -> dict[str, Any]:
    """The ``pretrain`` section with its defaults filled in: the view size and the modality."""
    settings = cfg.pretrain.model_dump(mode="json")
    settings["image_size"] = cfg.pretrain.image_size or cfg.data.image_size
    settings["modality"] = modality
    return settings


def pretrain_identity(encoder: str, seed: int, settings: dict[str, Any], image_hashes: Sequence[str]) -> str:
    """16 hex digits naming a pretraining: the same encoder, seed, settings and images give the same encoder."""
    blob = json.dumps(
        {
            "format": IDENTITY_FORMAT,
            "encoder": encoder,
            "seed": int(seed),
            "settings": settings,
            "images": sorted(image_hashes),
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cache_dir(cfg: Config, encoder: str, seed: int, identity: str) -> Path:
    """Where a run's pretraining is kept for every run beside it: ``output_dir/pretrain/ENCODER_seedN_ID``.

    In an experiment ``output_dir`` is the experiment folder, so each seed's pretraining serves all of its
    methods and label fractions.
    """
    return Path(cfg.output_dir) / "pretrain" / f"{encoder}_seed{seed}_{identity[:10]}"
