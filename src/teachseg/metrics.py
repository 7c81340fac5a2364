"""Segmentation metrics at threshold 0.5, at the mask's native resolution.

* Per image: Dice, Jaccard (IoU), precision, recall from smp's confusion counts. When both the ground truth
  and the prediction are empty, Dice = Jaccard = 1 (a correct "no tumour" answer); when only one is empty they
  are 0.
* Precision is **undefined (NaN)** when nothing is predicted and recall when the mask is empty, the both-empty
  case included: a "no tumour" answer has no predicted pixel to be right about and no tumour pixel to find.
  Scoring them 0 (or 1) would let the share of normal images move the averages. Means of precision and recall
  are taken with ``nanmean`` over the images where they are defined (NaN when there are none).
* Pooled ("micro"): the same formulas on the pixel counts summed over all images.
* **Validation Dice**, used to pick the best epoch and to compare Teacher and Student, is the mean of the
  per-image Dice over the validation images.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch


@dataclass
class ImageScores:
    """Scores of one image (Dice, Jaccard, precision, recall) and the pixel counts behind them."""

    dice: float
    jaccard: float
    precision: float
    recall: float
    tp: int
    fp: int
    fn: int
    gt_pixels: int
    pred_pixels: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def confusion(prob: torch.Tensor, target: torch.Tensor, threshold: float = 0.5) -> tuple[int, int, int, int]:
    """(tp, fp, fn, tn) of one (H, W) probability map against a binary mask, via smp's metrics."""
    import segmentation_models_pytorch as smp

    tp, fp, fn, tn = smp.metrics.get_stats(
        prob.reshape(1, 1, *prob.shape[-2:]).float(),
        (target.reshape(1, 1, *target.shape[-2:]) > 0.5).long(),
        mode="binary",
        threshold=threshold,
    )
    return int(tp.sum()), int(fp.sum()), int(fn.sum()), int(tn.sum())


def scores_from_counts(tp: int, fp: int, fn: int) -> ImageScores:
    """Scores from true-positive, false-positive and false-negative pixel counts (empty vs empty: 1)."""
    gt, pred = tp + fn, tp + fp
    if gt == 0 and pred == 0:
        return ImageScores(1.0, 1.0, math.nan, math.nan, tp, fp, fn, gt, pred)
    dice = 2 * tp / (2 * tp + fp + fn)
    jac = tp / (tp + fp + fn)
    return ImageScores(dice, jac, _ratio(tp, pred), _ratio(tp, gt), tp, fp, fn, gt, pred)


def _ratio(num: int, den: int) -> float:
    return num / den if den else math.nan


def nanmean(values: Iterable[float]) -> float:
    """Mean over the defined (non-NaN) values; NaN, without numpy's warning, when there are none."""
    x = np.asarray(list(values), dtype=float)
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.size else math.nan


def image_scores(
    prob: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray, threshold: float = 0.5
) -> ImageScores:
    """Scores of one probability map (H, W) in [0, 1] against its native-size binary mask (H, W)."""
    p = torch.as_tensor(prob)
    t = torch.as_tensor(target)
    if p.shape[-2:] != t.shape[-2:]:
        raise ValueError(f"prediction {tuple(p.shape)} and mask {tuple(t.shape)} differ in size")
    tp, fp, fn, _ = confusion(p, t.float(), threshold)
    return scores_from_counts(tp, fp, fn)


def pooled(scores: Iterable[ImageScores]) -> ImageScores:
    """Micro-averaged scores: counts summed over all images."""
    scores = list(scores)
    tp = sum(s.tp for s in scores)
    fp = sum(s.fp for s in scores)
    fn = sum(s.fn for s in scores)
    return scores_from_counts(tp, fp, fn)


def summarise(
    scores: Sequence[ImageScores], classes: Sequence[str | None] | None = None
) -> dict[str, object]:
    """Mean per-image metrics, pooled metrics and per-class means."""
    if not scores:
        return {"n": 0}
    out: dict[str, object] = {
        "n": len(scores),
        "dice": float(np.mean([s.dice for s in scores])),
        "jaccard": float(np.mean([s.jaccard for s in scores])),
        "precision": nanmean(s.precision for s in scores),
        "recall": nanmean(s.recall for s in scores),
    }
    pool = pooled(scores)
    out.update(
        pooled_dice=pool.dice,
        pooled_jaccard=pool.jaccard,
        pooled_precision=pool.precision,
        pooled_recall=pool.recall,
    )
    if classes is not None and any(c is not None for c in classes):
        per_class: dict[str, dict[str, float]] = {}
        for cls in sorted({str(c) for c in classes}):
            sel = [s for s, c in zip(scores, classes, strict=True) if str(c) == cls]
            per_class[cls] = {
                "n": len(sel),
                "dice": float(np.mean([s.dice for s in sel])),
                "jaccard": float(np.mean([s.jaccard for s in sel])),
            }
        out["per_class"] = per_class
    return out
