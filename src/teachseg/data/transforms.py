"""Joint image + target augmentation in torch, seeded per (seed, epoch, index).

Every random choice comes from ``numpy.random.default_rng([seed, epoch, index])``, so an epoch's augmented
batches are identical whether or not the run was interrupted and resumed, and whatever the number of workers.
Targets (hard masks or soft pseudo-labels) and their weight maps follow the image through the same geometry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from teachseg.config import AugmentConfig


@dataclass(frozen=True)
class Normalise:
    """Per-channel ``(image - mean) / std`` of a ``(3, H, W)`` image."""

    mean: Sequence[float]
    std: Sequence[float]

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """(3, H, W) float in [0, 1] -> normalised."""
        mean = torch.tensor(self.mean, dtype=image.dtype).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=image.dtype).view(-1, 1, 1)
        return (image - mean) / std


def to_float_image(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1).div_(255.0)


def resize(t: torch.Tensor, size: int | tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    """Resize a (C, H, W) float tensor."""
    hw = (size, size) if isinstance(size, int) else size
    if tuple(t.shape[-2:]) == tuple(hw):
        return t
    if mode == "nearest":
        return F.interpolate(t[None], size=hw, mode="nearest")[0]
    return F.interpolate(t[None], size=hw, mode="bilinear", align_corners=False, antialias=True)[0]


def _crop_box(rng: np.random.Generator, h: int, w: int, scale_min: float) -> tuple[int, int, int, int]:
    """A random-resized-crop box (top, left, height, width), as torchvision samples it."""
    area = h * w
    for _ in range(10):
        target = area * rng.uniform(scale_min, 1.0)
        ratio = float(np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))))
        cw = int(round(np.sqrt(target * ratio)))
        ch = int(round(np.sqrt(target / ratio)))
        if 0 < cw <= w and 0 < ch <= h:
            top = int(rng.integers(0, h - ch + 1))
            left = int(rng.integers(0, w - cw + 1))
            return top, left, ch, cw
    return 0, 0, h, w


def _colour(image: torch.Tensor, rng: np.random.Generator, strength: float) -> torch.Tensor:
    """Brightness, contrast and saturation jitter on a (3, H, W) image in [0, 1]."""
    b = rng.uniform(1 - strength, 1 + strength)
    c = rng.uniform(1 - strength, 1 + strength)
    s = rng.uniform(1 - strength, 1 + strength)
    image = image * b
    mean = image.mean()
    image = (image - mean) * c + mean
    grey = (0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2])[None]
    image = (image - grey) * s + grey
    return image.clamp_(0, 1)


class JointTransform:
    """Random resized crop, flips, 90-degree rotations and colour jitter, applied to image, target and weight.

    Args:
        size: output side (square).
        cfg: augmentation settings; ``cfg.enabled = False`` only resizes.
        strong: Noisy Student noise: stronger colour jitter and crops, plus Gaussian pixel noise.
    """

    def __init__(self, size: int, cfg: AugmentConfig, strong: bool = False):
        self.size = size
        self.cfg = cfg
        self.strong = strong

    def __call__(
        self,
        image: torch.Tensor,
        target: torch.Tensor,
        weight: torch.Tensor,
        rng: np.random.Generator,
        hard: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        tmode = "nearest" if hard else "bilinear"
        if not cfg.enabled:
            return (
                resize(image, self.size),
                resize(target, self.size, tmode),
                resize(weight, self.size, tmode),
            )
        scale_min = cfg.crop_scale_min * (0.6 if self.strong else 1.0)
        top, left, ch, cw = _crop_box(rng, image.shape[-2], image.shape[-1], scale_min)
        sl = (slice(None), slice(top, top + ch), slice(left, left + cw))
        image = resize(image[sl], self.size)
        target = resize(target[sl], self.size, tmode)
        weight = resize(weight[sl], self.size, tmode)
        dims: list[int] = []
        if cfg.hflip and rng.random() < 0.5:
            dims.append(-1)
        if cfg.vflip and rng.random() < 0.5:
            dims.append(-2)
        if dims:
            image, target, weight = (t.flip(dims) for t in (image, target, weight))
        k = int(rng.integers(0, 4)) if cfg.rot90 else 0
        if k:
            image, target, weight = (torch.rot90(t, k, dims=(-2, -1)) for t in (image, target, weight))
        strength = cfg.color_jitter * (2.5 if self.strong else 1.0)
        if strength > 0:
            image = _colour(image, rng, min(strength, 0.9))
        if self.strong:
            noise = torch.from_numpy(rng.standard_normal(image.shape).astype(np.float32)) * 0.03
            image = (image + noise).clamp_(0, 1)
        return image.contiguous(), target.contiguous(), weight.contiguous()
