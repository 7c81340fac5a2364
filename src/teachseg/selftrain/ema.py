"""Exponential moving average of a model's weights: the Mean Teacher, and FixMatch's optional teacher.

Built on PyTorch's :class:`torch.optim.swa_utils.AveragedModel` (which keeps the copy, its buffers and the
update count in the state dict, so a resumed run continues the same average). Only the decay is ours: the
warm-up of Tarvainen & Valpola (2017), ``alpha = min(1 - 1 / (n + 1), decay)`` after ``n`` updates, so the
first updates average uniformly instead of keeping the random initial weights for hundreds of steps.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel


def ema_decay_at(decay: float, updates: int) -> float:
    """The decay used for the update after ``updates`` earlier ones (with Mean Teacher's warm-up)."""
    return min(1.0 - 1.0 / (updates + 1), decay)


def _ema_fn(decay: float) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor | int], torch.Tensor]:
    def average(averaged: torch.Tensor, current: torch.Tensor, updates: torch.Tensor | int) -> torch.Tensor:
        alpha = ema_decay_at(decay, int(updates))
        return averaged * alpha + current.detach() * (1.0 - alpha)

    return average


def make_ema(model: nn.Module, decay: float) -> AveragedModel:
    """An EMA copy of ``model`` (weights and buffers, e.g. batch-norm statistics) that never trains.

    Call ``ema.update_parameters(model)`` after each optimiser step; ``ema.module`` is the averaged network.
    """
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
    ema = AveragedModel(model, avg_fn=_ema_fn(decay), use_buffers=True)
    ema.requires_grad_(False)
    return ema
