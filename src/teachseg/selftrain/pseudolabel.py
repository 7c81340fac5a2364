"""Soft pseudo-labels: the Teacher's probabilities for unlabelled images, stored as 8-bit PNGs.

Each generation's labels live in ``pseudo/gen<g>/`` with a ``manifest.json`` naming the source image, its
content hash and the teacher (its weights' SHA-256, the TTA setting and the inference backend that ran it,
``selftrain.backend``). Every PNG is written atomically, so a resumed run keeps finished labels and only
computes the missing ones, but only when the manifest names the same teacher weights, TTA setting and backend
(a manifest without one was written by torch); labels from any other teacher are cleared and made again.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from teachseg.data.datasets import Record, read_pseudo
from teachseg.data.imageio import read_image
from teachseg.inference.images import batched, make_predictor, predict_prob, safe_key
from teachseg.inference.quantise import to_uint8
from teachseg.io import read_json, write_json, write_png
from teachseg.models import ModelMeta
from teachseg.precision import Precision
from teachseg.training.progress import Reporter

MANIFEST = "manifest.json"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, read in chunks (hex digest)."""
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
    teacher_sha256: str | None = None,
    tta: bool = True,
    batch_size: int = 8,
    progress: Reporter | None = None,
    precision: str | Precision = Precision.AUTO,
    backend: str = "torch",
) -> dict[str, Any]:
    """Write one soft label per record (native size) and the manifest.

    ``backend``: the inference engine (:mod:`teachseg.inference.backends`; ``auto`` resolves to the one
    that runs). Labels already on disk are reused only when the manifest names the same teacher weights
    (``teacher_sha256``), TTA setting and backend, and the source image still has the recorded content hash;
    any other folder is cleared first, so a label on disk is always the current teacher's. ``progress`` shows
    the labels being written as the phase ``gen<generation> pseudo-labels``.
    """
    hashes = {rec.id: sha256_file(rec.image) for rec in records}
    predictor = make_predictor(model, meta, tta, precision, backend=backend)  # the shared policy, "auto" too
    known = reusable_labels(out_dir, teacher_sha256, tta, predictor.backend)
    if known is None:
        clear_labels(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    header = {
        "generation": generation,
        "teacher": teacher,
        "teacher_sha256": teacher_sha256,
        "tta": tta,
        "backend": predictor.backend,
    }
    # The header goes down before any label, so every PNG in the folder was made by the teacher it names.
    write_json(out_dir / MANIFEST, {**header, "complete": False, "images": []})
    entries: dict[str, dict[str, Any]] = {}
    todo: list[Record] = []
    for rec in records:
        path = out_dir / f"{safe_key(rec.id)}.png"
        same_image = (known or {}).get(rec.id, hashes[rec.id]) == hashes[rec.id]
        if path.is_file() and same_image:  # written atomically by this teacher in an interrupted run
            entries[rec.id] = {"file": path.name, **label_stats(read_pseudo(path))}
        else:
            todo.append(rec)
    progress = progress or Reporter()
    progress.start(f"gen{generation} pseudo-labels", len(todo), "image")
    written = 0
    for chunk in batched(todo, batch_size):
        images = [read_image(r.image) for r in chunk]
        probs = predict_prob(model, images, meta, predictor=predictor)
        for rec, prob in zip(chunk, probs, strict=True):
            q = to_uint8(prob)
            path = write_png(out_dir / f"{safe_key(rec.id)}.png", q)
            entries[rec.id] = {"file": path.name, **label_stats(q.astype(np.float32) / 255.0)}
        written += len(chunk)
        progress.update(written, f"{written}/{len(todo)} images")
    progress.finish()
    items = []
    for rec in records:
        e = entries[rec.id]
        items.append({"id": rec.id, "source": str(rec.image), "sha256": hashes[rec.id], **e})
    n = len(items)
    stats = {
        "n_images": n,
        **{
            k: float(np.mean([i[k] for i in items])) if n else 0.0
            for k in ("mean_confidence", "confident_share", "positive_share")
        },
    }
    manifest = {**header, "complete": True, "images": items, "stats": stats}
    write_json(out_dir / MANIFEST, manifest)
    return manifest


def reusable_labels(
    out_dir: Path, teacher_sha256: str | None, tta: bool, backend: str = "torch"
) -> dict[str, str] | None:
    """``{id: source sha256}`` of the labels in ``out_dir`` if they were made by this teacher with this TTA
    setting and backend (empty while the first run was still writing them), else None: they must not be
    reused. A manifest naming no backend was written by torch."""
    path = out_dir / MANIFEST
    if teacher_sha256 is None or not path.is_file():
        return None
    try:
        manifest = read_json(path)
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict):
        return None
    if manifest.get("teacher_sha256") != teacher_sha256 or manifest.get("tta") is not tta:
        return None
    if manifest.get("backend", "torch") != backend:
        return None
    return {str(i["id"]): str(i.get("sha256")) for i in manifest.get("images") or [] if "id" in i}


def clear_labels(out_dir: Path) -> None:
    """Remove labels another teacher (or TTA setting) made: moved aside in one rename, then deleted."""
    if not out_dir.exists():
        return
    stale = out_dir.with_name(f".{out_dir.name}.stale-{uuid.uuid4().hex[:8]}")
    out_dir.rename(stale)
    shutil.rmtree(stale, ignore_errors=True)


def pseudo_records(records: Sequence[Record], manifest: dict[str, Any], out_dir: Path) -> list[Record]:
    """Records whose targets are the pseudo-labels in ``out_dir``."""
    files = {i["id"]: out_dir / i["file"] for i in manifest["images"]}
    return [Record(id=r.id, image=r.image, pseudo=files[r.id], cls=r.cls) for r in records if r.id in files]
