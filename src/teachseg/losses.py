"""Binary cross-entropy + Dice, for hard masks and soft pseudo-labels, with optional per-pixel weights.

Why hand-written: smp's and MONAI's Dice losses take no per-pixel weight map, and self-training needs one
(confidence-weighted soft pseudo-labels, ignored pixels). The formulas are the standard ones:

* BCE: ``sum(w * bce(logit, t)) / sum(w)``, with ``t`` in [0, 1] (soft targets are exact for BCE).
* Dice: ``1 - (2 * sum(w p t) + s) / (sum(w p) + sum(w t) + s)`` with ``p = sigmoid(logit)``.

Dice is computed **per batch** by default (sums over every pixel of every image in the batch): images with
empty masks (BUSI's normal class, tumour-free tiles) make per-image Dice jump between 0 and 1 for a handful
of pixels, which gives noisy gradients; pooling over the batch is stable and is what smp's ``DiceLoss`` does.
``per_image=True`` averages per-image Dice instead.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BCEDiceLoss(nn.Module):
    """``bce_weight * BCE + dice_weight * (1 - Dice)`` on logits.

    Args:
        bce_weight: weight of the BCE term.
        dice_weight: weight of the Dice term.
        smooth: additive smoothing of the Dice ratio.
        per_image: Dice per image then averaged, instead of pooled over the batch.

    Example:
        >>> loss = BCEDiceLoss()
        >>> logits = torch.zeros(2, 1, 8, 8)
        >>> target = torch.ones(2, 1, 8, 8)
        >>> float(loss(logits, target)) > 0
        True
    """

    def __init__(
        self, bce_weight: float = 1.0, dice_weight: float = 1.0, smooth: float = 1.0, per_image: bool = False
    ):
        super().__init__()
        self.bce_weight = bce_weight
        self.dice_weight = dice_weight
        self.smooth = smooth
        self.per_image = per_image

    def forward(
        self, logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        logits = logits.float()
        target = target.float()
        if weight is None:
            weight = torch.ones_like(target)
        weight = weight.float()
        total = logits.new_zeros(())
        if self.bce_weight:
            bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
            total = total + self.bce_weight * (bce * weight).sum() / weight.sum().clamp_min(1e-6)
        if self.dice_weight:
            prob = torch.sigmoid(logits)
            dims = (1, 2, 3) if self.per_image else (0, 1, 2, 3)
            inter = (weight * prob * target).sum(dims)
            denom = (weight * prob).sum(dims) + (weight * target).sum(dims)
            dice = (2 * inter + self.smooth) / (denom + self.smooth)
            total = total + self.dice_weight * (1 - dice).mean()
        return total


def confidence_weight(prob: torch.Tensor, mode: str = "linear", threshold: float = 0.6) -> torch.Tensor:
    """Per-pixel weight of a soft pseudo-label ``prob`` in [0, 1].

    ``linear``: ``|2p - 1|`` (0 where the teacher is unsure, 1 where it is certain);
    ``threshold``: 1 where ``max(p, 1 - p) >= threshold``, else 0 (those pixels are ignored);
    ``none``: 1 everywhere.
    """
    if mode == "linear":
        return (2 * prob - 1).abs()
    if mode == "threshold":
        return (torch.maximum(prob, 1 - prob) >= threshold).to(prob.dtype)
    if mode == "none":
        return torch.ones_like(prob)
    raise ValueError(f"unknown confidence mode {mode!r}; use linear, threshold or none")
