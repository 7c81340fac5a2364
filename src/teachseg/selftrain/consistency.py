"""Unsupervised losses of the online methods, and the ramp-up of their weight.

* Mean Teacher (Tarvainen & Valpola 2017): mean squared difference between the student's and the EMA
  teacher's probabilities on the same unlabelled image under different noise.
* FixMatch (Sohn et al. 2020), as UniMatch applies it to segmentation (Yang et al. 2023): the weak view's
  prediction, thresholded at 0.5, is the target of the strong view, on the pixels where it is confident
  (``max(p, 1 - p) >= threshold``); the loss is the same BCE + Dice as the labelled images', weighted by
  that confidence mask.
"""

from __future__ import annotations

import math

import torch

from teachseg.losses import BCEDiceLoss


def sigmoid_rampup(current: float, length: float) -> float:
    """``exp(-5 (1 - t)^2)`` with ``t = current / length`` clipped to [0, 1] (Laine & Aila 2017); 1 if
    ``length`` is 0."""
    if length <= 0:
        return 1.0
    t = min(max(current / length, 0.0), 1.0)
    return math.exp(-5.0 * (1.0 - t) ** 2)


def mean_teacher_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the probabilities; no gradient reaches the teacher."""
    student = torch.sigmoid(student_logits.float())
    teacher = torch.sigmoid(teacher_logits.float()).detach()
    return ((student - teacher) ** 2).mean()


def confident_targets(teacher_prob: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Hard targets (``p >= 0.5``) and the confidence mask (``max(p, 1 - p) >= threshold``), both float."""
    prob = teacher_prob.detach().float()
    hard = (prob >= 0.5).to(prob.dtype)
    mask = (torch.maximum(prob, 1.0 - prob) >= threshold).to(prob.dtype)
    return hard, mask


def fixmatch_loss(
    loss: BCEDiceLoss, strong_logits: torch.Tensor, hard: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """The labelled loss on the strong view against the weak view's confident hard targets (0 where none is)."""
    return loss(strong_logits, hard, mask)
