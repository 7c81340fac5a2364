"""Predict probabilities for dataset images and score them at native resolution: the one scoring path.

Every figure called "validation Dice" (the epoch's, which selects the best epoch and decides whether a
Student replaces its Teacher; ``summary.json``; ``val_per_image.csv``; the report) comes from
:func:`score_native`, which takes the model's probabilities at ``image_size`` and

1. resizes the **probabilities** (not the logits) bilinearly (``align_corners=False``) to the mask's native
   size, in float32 on the CPU, so the device does not change the result;
2. thresholds them and scores the image with :func:`teachseg.metrics.image_scores`.

Probabilities rather than logits because they are what flip TTA averages and what pseudo-labels store.

The selection figure is computed the way the epoch computed it: no TTA, the Trainer's precision (the same
:class:`~teachseg.precision.Precision`), the Trainer's memory format and validation batch size. So the best
epoch's ``val_dice`` equals ``summary.json``'s ``val.dice`` and the mean of ``val_per_image.csv``. ``teachseg
evaluate`` may add TTA; its figures are then labelled as such and are not the selection figure.
"""

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
from teachseg.data.imageio import read_image
from teachseg.data.masks import read_mask
from teachseg.data.transforms import Normalise, resize, to_float_image
from teachseg.inference.predictor import Predictor
from teachseg.io import write_json, write_png, write_text
from teachseg.metrics import ImageScores, image_scores, summarise
from teachseg.models import ModelMeta
from teachseg.precision import Precision, resolve

PER_IMAGE_COLUMNS = ["id", "class", "dice", "jaccard", "precision", "recall", "gt_pixels", "pred_pixels"]


def make_predictor(
    model: nn.Module,
    meta: ModelMeta,
    tta: bool = False,
    precision: str | Precision = Precision.AUTO,
    channels_last: bool = True,
) -> Predictor:
    """The shared batched runner (mixed precision, channels_last, flip TTA) on the model's own device.

    ``precision``: a :class:`~teachseg.precision.Precision` or any name it accepts, resolved for the model's
    device by :func:`teachseg.precision.resolve`.
    """
    device = str(next(model.parameters()).device)
    return Predictor(
        model,
        meta.mean,
        meta.std,
        device=device,
        precision=resolve(precision, device),
        tta=tta,
        channels_last=channels_last,
    )


def native_probability(prob: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(h, w) probabilities at the model's input size -> (H, W) float32 on the CPU at the native ``size``.

    Bilinear, ``align_corners=False``, clamped to [0, 1]; unchanged when the sizes already match.
    """
    p = prob.detach().float().cpu().reshape(1, 1, *prob.shape[-2:])
    if tuple(p.shape[-2:]) != tuple(size):
        p = F.interpolate(p, size=tuple(size), mode="bilinear", align_corners=False)
    return p[0, 0].clamp(0.0, 1.0)


def score_native(
    prob: torch.Tensor, mask: torch.Tensor | np.ndarray, threshold: float = 0.5
) -> tuple[torch.Tensor, ImageScores]:
    """The scoring path: probabilities at the input size -> (native probability map, its scores).

    ``mask`` is the (H, W) ground truth at native size (anything > 0.5 is tumour).
    """
    target = torch.as_tensor(mask).detach().cpu()
    native = native_probability(prob, (int(target.shape[-2]), int(target.shape[-1])))
    return native, image_scores(native, target, threshold)


def predict_prob(
    model: nn.Module,
    images: Sequence[np.ndarray],
    meta: ModelMeta,
    tta: bool = False,
    precision: str | Precision = Precision.AUTO,
    predictor: Predictor | None = None,
) -> list[np.ndarray]:
    """Probability maps (float32, native size) for a batch of (H, W, 3) uint8 images.

    Each image is resized to the model's square input exactly as in training; the probabilities are resized
    back to the image's native size by :func:`native_probability`. ``tta`` averages flipped predictions.
    Pass ``predictor`` (from :func:`make_predictor`) to reuse one across batches.
    """
    probs = predict_input_size(images, meta, predictor or make_predictor(model, meta, tta, precision))
    return [native_probability(p, im.shape[:2]).numpy() for p, im in zip(probs, images, strict=True)]


def predict_input_size(images: Sequence[np.ndarray], meta: ModelMeta, predictor: Predictor) -> torch.Tensor:
    """(N, image_size, image_size) probabilities of (H, W, 3) uint8 images, preprocessed as in training."""
    norm = Normalise(meta.mean, meta.std)
    x = torch.stack([norm(resize(to_float_image(im), meta.image_size)) for im in images])
    return torch.from_numpy(predictor.predict_normalised(x.numpy()))


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
    precision: str | Precision = Precision.AUTO,
    channels_last: bool = True,
) -> list[dict[str, object]]:
    """Per-image metrics at native resolution (:func:`score_native`); optionally store probability and
    ground-truth PNGs.

    To reproduce a training epoch's figures exactly, pass that run's precision, ``channels_last`` and
    validation batch size, and ``tta=False`` (as :func:`teachseg.training.fit.train_model` does).
    """
    rows: list[dict[str, object]] = []
    predictor = make_predictor(model, meta, tta, precision, channels_last)
    for chunk in batched(records, batch_size):
        images = [read_image(r.image) for r in chunk]
        probs = predict_input_size(images, meta, predictor)
        for rec, im, p in zip(chunk, images, probs, strict=True):
            mask = read_mask(rec.masks, mat_variable, expected_shape=im.shape[:2])
            native, s = score_native(p, mask, meta.threshold)
            prob = native.numpy()
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
