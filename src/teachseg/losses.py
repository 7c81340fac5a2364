"""Binary cross-entropy + Dice, for hard masks and soft pseudo-labels, with per-pixel weights and a weighed
pseudo-labelled part.

Why hand-written: smp's and MONAI's Dice losses take no per-pixel weight map, and self-training needs one
(confidence-weighted soft pseudo-labels, ignored pixels). With ``p = sigmoid(logit)`` and weights ``w``:

* BCE: ``sum(w * bce(logit, t)) / sum(w)``, with ``t`` in [0, 1] (soft targets are exact for BCE).
* Dice: the **Dice semimetric loss** (Wang & Blaschko, MICCAI 2023, arXiv:2303.16296)
  ``1 - (a + b - d + s) / (a + b + s)`` with ``a = sum(w p)``, ``b = sum(w t)``, ``d = sum(w |p - t|)``.
  On hard masks (``t`` in {0, 1}) ``a + b - d = 2 sum(w p t)``, so it *is* the usual soft Dice loss; on soft
  targets it is zero at ``p = t`` and nowhere else. The usual soft Dice is not: its gradient raises a pixel
  whenever its target exceeds half the Dice, which drives a soft pseudo-label of 0.3 towards 1.

Dice is computed **per batch** by default (sums over every pixel of every image in the batch): images with
empty masks (BUSI's normal class, tumour-free tiles) make per-image Dice jump between 0 and 1 for a handful
of pixels, which gives noisy gradients; pooling over the batch is stable and is what smp's ``DiceLoss`` does.
``per_image=True`` averages per-image Dice instead.

**Pseudo-labelled images** (``is_pseudo``) form their own term: ``L = L_real + pseudo_weight * L_pseudo``,
where each of ``L_real`` and ``L_pseudo`` is BCE + Dice normalised over its own images and pixels (0 when the
batch has none of them). ``pseudo_weight`` is thus a true multiplier of the pseudo-labels' gradient, whatever
the batch composition; a weight folded into the pixel weights would cancel in both normalised terms.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def dice_semimetric_loss(
    prob: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor,
    per_image: bool = False,
    smooth: float = 1.0,
) -> torch.Tensor:
    """Weighted Dice semimetric loss of probabilities against (soft) targets, averaged over images if
    ``per_image`` else pooled over the batch. Where nothing is weighted or present (``a + b + s == 0``) the
    loss is 0: prediction and target agree.
    """
    dims = (1, 2, 3) if per_image else (0, 1, 2, 3)
    a = (weight * prob).sum(dims)
    b = (weight * target).sum(dims)
    d = (weight * (prob - target).abs()).sum(dims)
    denom = a + b + smooth
    ratio = (a + b - d + smooth) / denom.clamp_min(1e-12)
    return (1 - torch.where(denom > 0, ratio, torch.ones_like(ratio))).mean()


class BCEDiceLoss(nn.Module):
    """``bce_weight * BCE + dice_weight * DiceLoss`` on logits, with a weighed pseudo-labelled part.

    Args:
        bce_weight: weight of the BCE term.
        dice_weight: weight of the Dice term.
        smooth: additive smoothing of the Dice ratio.
        per_image: Dice per image then averaged, instead of pooled over the batch.
        pseudo_weight: multiplier of the pseudo-labelled images' term (see the module docstring).

    Example:
        >>> loss = BCEDiceLoss(pseudo_weight=0.5)
        >>> logits = torch.zeros(2, 1, 8, 8)
        >>> target = torch.ones(2, 1, 8, 8)
        >>> float(loss(logits, target)) > 0
        True
        >>> real, pseudo = loss(logits[:1], target[:1]), loss(logits[1:], target[1:], is_pseudo=torch.tensor([True]))
        >>> bool(torch.isclose(pseudo, 0.5 * real))
        True
    """

    def __init__(
        self,
        bce_weight: float = 1.0,
        dice_weight: float = 1.0,
        smooth: float = 1.0,
        per_image: bool = False,
        pseudo_weight: float = 1.0,
    ):
        super().__init__()
        self.bce_weight = bce_weight
        self.dice_weight = dice_weight
        self.smooth = smooth
        self.per_image = per_image
        self.pseudo_weight = pseudo_weight

    def forward(
        self,
        logits: torch.Tensor,
        target: torch.Tensor,
        weight: torch.Tensor | None = None,
        is_pseudo: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Loss of a batch (B, 1, H, W); ``is_pseudo`` (B,) marks pseudo-labelled images (None: all real)."""
        logits = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
        target = target.to(logits.dtype)
        weight = torch.ones_like(target) if weight is None else weight.to(logits.dtype)
        if is_pseudo is None:
            return self._term(logits, target, weight)
        is_pseudo = is_pseudo.to(device=logits.device, dtype=torch.bool).reshape(-1)
        # Zero that stays in the graph: a batch of pseudo-labelled images only, with pseudo_weight 0, gives a
        # loss with zero gradients, not a constant that backward rejects. A zero gradient does not make an AdamW
        # step a no-op (momentum, weight decay): SegmentationModule leaves such images out and skips the step.
        total = logits.sum() * 0.0
        real = ~is_pseudo
        if real.any():
            total = total + self._term(logits[real], target[real], weight[real])
        if self.pseudo_weight and is_pseudo.any():
            total = total + self.pseudo_weight * self._term(
                logits[is_pseudo], target[is_pseudo], weight[is_pseudo]
            )
        return total

    def _term(self, logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """BCE + Dice of one group of images, normalised over its own pixels."""
        total = logits.new_zeros(())
        if self.bce_weight:
            bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
            total = total + self.bce_weight * (bce * weight).sum() / weight.sum().clamp_min(1e-6)
        if self.dice_weight:
            prob = torch.sigmoid(logits)
            total = total + self.dice_weight * dice_semimetric_loss(
                prob, target, weight, self.per_image, self.smooth
            )
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
