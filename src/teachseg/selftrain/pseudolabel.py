"""Soft pseudo-labels: the Teacher's probabilities for unlabelled images, stored as 8-bit PNGs.

Each generation's labels live in ``pseudo/gen<g>/`` with a ``manifest.json`` naming the source image, its
content hash and the teacher. Every PNG is written atomically, so a resumed run keeps finished labels and
only computes the missing ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from teachseg.data.datasets import Record, read_pseudo
from teachseg.data.imageio import read_image
from teachseg.io import write_json, write_png
from teachseg.models import ModelMeta
from teachseg.training.evaluate import batched, make_predictor, predict_prob, safe_key, to_uint8

MANIFEST = "manifest.json"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def label_stats(prob: np.ndarray, confident_at: float = 0.9) -> dict[str, float]:
    """Mean confidence max(p, 1-p), share of pixels at least ``confident_at`` confident, positive share."""
    conf = np.maximum(prob, 1.0 - prob)
    return {
        "mean_confidence": float(conf.mean()),
        "confident_share": float((conf >= confident_at).mean()),
        "positive_share": float((prob >= 0.5).mean()),
    }


def generate_pseudo_labels(
    model: nn.Module,
    meta: ModelMeta,
    records: Sequence[Record],
    out_dir: Path,
    *,
    generation: int,
    teacher: str,
    tta: bool = True,
    batch_size: int = 8,
    progress: Any = None,
) -> dict[str, Any]:
    """Write one soft label per record (native size) and the manifest; reuse labels already on disk."""
    out_dir.mkdir(parents=True, exist_ok=True)
    entries: dict[str, dict[str, Any]] = {}
    todo: list[Record] = []
    for rec in records:
        path = out_dir / f"{safe_key(rec.id)}.png"
        if path.is_file():  # written atomically by an earlier (interrupted) run: complete
            entries[rec.id] = {"file": path.name, **label_stats(read_pseudo(path))}
        else:
            todo.append(rec)
    task = progress.add_task(f"pseudo-labels gen {generation}", total=len(todo)) if progress else None
    predictor = make_predictor(model, meta, tta)
    for chunk in batched(todo, batch_size):
        images = [read_image(r.image) for r in chunk]
        probs = predict_prob(model, images, meta, predictor=predictor)
        for rec, prob in zip(chunk, probs, strict=True):
            q = to_uint8(prob)
            path = write_png(out_dir / f"{safe_key(rec.id)}.png", q)
            entries[rec.id] = {"file": path.name, **label_stats(q.astype(np.float32) / 255.0)}
        if progress is not None and task is not None:
            progress.advance(task, len(chunk))
    items = []
    for rec in records:
        e = entries[rec.id]
        items.append({"id": rec.id, "source": str(rec.image), "sha256": sha256_file(rec.image), **e})
    n = len(items)
    stats = {
        "n_images": n,
        **{
            k: float(np.mean([i[k] for i in items])) if n else 0.0
            for k in ("mean_confidence", "confident_share", "positive_share")
        },
    }
    manifest = {"generation": generation, "teacher": teacher, "tta": tta, "images": items, "stats": stats}
    write_json(out_dir / MANIFEST, manifest)
    return manifest


def pseudo_records(records: Sequence[Record], manifest: dict[str, Any], out_dir: Path) -> list[Record]:
    """Records whose targets are the pseudo-labels in ``out_dir``."""
    files = {i["id"]: out_dir / i["file"] for i in manifest["images"]}
    return [Record(id=r.id, image=r.image, pseudo=files[r.id], cls=r.cls) for r in records if r.id in files]
