"""Predict probabilities for dataset images and score them at native resolution."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from teachseg.data.datasets import Record
from teachseg.data.imageio import read_image, read_mask
from teachseg.data.transforms import Normalise, resize, to_float_image
from teachseg.inference.predictor import Predictor
from teachseg.io import write_json, write_png, write_text
from teachseg.metrics import ImageScores, image_scores, summarise
from teachseg.models import ModelMeta

PER_IMAGE_COLUMNS = ["id", "class", "dice", "jaccard", "precision", "recall", "gt_pixels", "pred_pixels"]


def make_predictor(
    model: nn.Module, meta: ModelMeta, tta: bool = False, precision: str = "bf16"
) -> Predictor:
    """The shared batched runner (mixed precision, channels_last, flip TTA) on the model's own device.

    ``precision``: ``bf16``, ``fp16`` or ``32``/``fp32`` (Lightning's names such as ``bf16-mixed`` work too).
    """
    name = (
        "fp32" if precision.startswith(("32", "fp32")) else "fp16" if precision.startswith("16") else "bf16"
    )
    device = next(model.parameters()).device
    return Predictor(model, meta.mean, meta.std, device=str(device), precision=name, tta=tta)


def predict_prob(
    model: nn.Module,
    images: Sequence[np.ndarray],
    meta: ModelMeta,
    tta: bool = False,
    precision: str = "bf16",
    predictor: Predictor | None = None,
) -> list[np.ndarray]:
    """Probability maps (float32, native size) for a batch of (H, W, 3) uint8 images.

    Each image is resized to the model's square input exactly as in training; the probabilities are resized
    back to the image's native size. ``tta`` averages flipped predictions. Pass ``predictor`` (from
    :func:`make_predictor`) to reuse one across batches.
    """
    predictor = predictor or make_predictor(model, meta, tta, precision)
    norm = Normalise(meta.mean, meta.std)
    x = torch.stack([norm(resize(to_float_image(im), meta.image_size)) for im in images])
    probs = torch.from_numpy(predictor.predict_normalised(x.numpy()))[:, None]
    out = []
    for p, im in zip(probs, images, strict=True):
        native = F.interpolate(p[None], size=im.shape[:2], mode="bilinear", align_corners=False)[0, 0]
        out.append(native.clamp(0, 1).numpy())
    return out


def batched(items: Sequence[Record], size: int) -> Iterator[Sequence[Record]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def safe_key(record_id: str) -> str:
    """A file-system-safe, unique-enough name for an image id."""
    import hashlib

    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(record_id).with_suffix("").as_posix()).strip("_")[:80]
    return f"{stem}-{hashlib.sha1(record_id.encode()).hexdigest()[:6]}"


def to_uint8(prob: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(prob * 255.0), 0, 255).astype(np.uint8)


def evaluate_records(
    model: nn.Module,
    meta: ModelMeta,
    records: Sequence[Record],
    mat_variable: str | None = None,
    batch_size: int = 8,
    tta: bool = False,
    pred_dir: Path | None = None,
    precision: str = "bf16",
) -> list[dict[str, object]]:
    """Per-image metrics at native resolution; optionally store probability and ground-truth PNGs."""
    rows: list[dict[str, object]] = []
    predictor = make_predictor(model, meta, tta, precision)
    for chunk in batched(records, batch_size):
        images = [read_image(r.image) for r in chunk]
        probs = predict_prob(model, images, meta, predictor=predictor)
        for rec, im, prob in zip(chunk, images, probs, strict=True):
            mask = read_mask(rec.masks, mat_variable, expected_shape=im.shape[:2])
            s: ImageScores = image_scores(prob, mask, meta.threshold)
            rows.append(
                {
                    "id": rec.id,
                    "class": rec.cls or "",
                    "dice": s.dice,
                    "jaccard": s.jaccard,
                    "precision": s.precision,
                    "recall": s.recall,
                    "gt_pixels": s.gt_pixels,
                    "pred_pixels": s.pred_pixels,
                    "_scores": s,
                }
            )
            if pred_dir is not None:
                key = safe_key(rec.id)
                write_png(pred_dir / f"{key}_prob.png", to_uint8(prob))
                write_png(pred_dir / f"{key}_gt.png", mask.astype(np.uint8) * 255)
    return rows


def write_per_image_csv(path: Path, rows: Sequence[dict[str, object]]) -> None:
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=PER_IMAGE_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in r.items()})
    write_text(path, buf.getvalue())


def summarise_rows(rows: Sequence[dict[str, object]]) -> dict[str, object]:
    scores = [r["_scores"] for r in rows]
    classes = [str(r["class"]) or None for r in rows]
    return summarise(scores, classes)  # type: ignore[arg-type]


def write_pred_index(pred_root: Path, ids: Sequence[str]) -> None:
    write_json(pred_root / "index.json", {i: safe_key(i) for i in ids})
