"""Score dataset images at native resolution: the one scoring path.

The probabilities come from :mod:`teachseg.inference.images` (predictor, batches, resizing back).

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
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from teachseg.data.datasets import Record
from teachseg.data.imageio import read_image
from teachseg.data.masks import read_mask
from teachseg.inference.images import (
    batched,
    make_predictor,
    native_probability,
    predict_input_size,
    safe_key,
)
from teachseg.inference.predictor import Predictor
from teachseg.inference.quantise import to_uint8
from teachseg.io import write_json, write_png, write_text
from teachseg.metrics import ImageScores, image_scores, summarise
from teachseg.models import ModelMeta
from teachseg.precision import Precision

PER_IMAGE_COLUMNS = ["id", "class", "dice", "jaccard", "precision", "recall", "gt_pixels", "pred_pixels"]


def score_native(
    prob: torch.Tensor, mask: torch.Tensor | np.ndarray, threshold: float = 0.5
) -> tuple[torch.Tensor, ImageScores]:
    """The scoring path: probabilities at the input size -> (native probability map, its scores).

    ``mask`` is the (H, W) ground truth at native size (anything > 0.5 is tumour).
    """
    target = torch.as_tensor(mask).detach().cpu()
    native = native_probability(prob, (int(target.shape[-2]), int(target.shape[-1])))
    return native, image_scores(native, target, threshold)


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
    predictor: Predictor | None = None,
    on_images: Callable[[int], None] | None = None,
) -> list[dict[str, object]]:
    """Per-image metrics at native resolution (:func:`score_native`); optionally store probability and
    ground-truth PNGs.

    To reproduce a training epoch's figures exactly, pass that run's precision, ``channels_last`` and
    validation batch size, and ``tta=False`` (as :func:`teachseg.training.fit.train_model` does).
    ``predictor`` (from :func:`~teachseg.inference.images.make_predictor`, e.g. on another backend) replaces
    the torch one built from ``tta``, ``precision`` and ``channels_last``. ``on_images(n)`` hears of each
    batch of ``n`` images scored (a progress bar).
    """
    rows: list[dict[str, object]] = []
    predictor = predictor or make_predictor(model, meta, tta, precision, channels_last)
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
        if on_images is not None:
            on_images(len(chunk))
    return rows


def write_per_image_csv(path: Path, rows: Sequence[dict[str, object]]) -> None:
    """Write the per-image scores (``PER_IMAGE_COLUMNS``) as a CSV, atomically."""
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=PER_IMAGE_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in r.items()})
    write_text(path, buf.getvalue())


def summarise_rows(rows: Sequence[dict[str, object]]) -> dict[str, object]:
    """Per-image means, pooled and per-class scores of evaluated rows (``teachseg.metrics.summarise``)."""
    scores = [r["_scores"] for r in rows]
    classes = [str(r["class"]) or None for r in rows]
    return summarise(scores, classes)  # type: ignore[arg-type]


def write_pred_index(pred_root: Path, ids: Sequence[str]) -> None:
    """Write ``pred/index.json``: each image id and the file-name key of its PNGs."""
    write_json(pred_root / "index.json", {i: safe_key(i) for i in ids})
