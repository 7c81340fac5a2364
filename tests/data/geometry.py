"""Checks that an augmentation moved no pixel: a test image with sharp edges, and the moves to compare with."""

from __future__ import annotations

import math

import torch


def blocks(size: int = 48, block: int = 6, seed: int = 0) -> torch.Tensor:
    """A grey (3, size, size) image of random flat blocks in [0.25, 0.75]: sharp, non-periodic edges."""
    g = torch.Generator().manual_seed(seed)
    cells = 0.25 + 0.5 * torch.rand(1, 1, size // block, size // block, generator=g)
    return torch.nn.functional.interpolate(cells, scale_factor=block, mode="nearest")[0].expand(3, -1, -1)


def moved(image: torch.Tensor, dy: float, dx: float, degrees: float) -> torch.Tensor:
    """``image`` (H, W) rotated by ``degrees`` about its centre, then shifted by (dy, dx) pixels."""
    h, w = image.shape
    a = math.radians(degrees)
    theta = torch.tensor(
        [[math.cos(a), -math.sin(a) * h / w, -2 * dx / w], [math.sin(a) * w / h, math.cos(a), -2 * dy / h]]
    )
    grid = torch.nn.functional.affine_grid(theta[None], [1, 1, h, w], align_corners=False)
    return torch.nn.functional.grid_sample(image[None, None], grid, align_corners=False)[0, 0]


def corr(a: torch.Tensor, b: torch.Tensor, margin: int = 8) -> float:
    """Pearson correlation of two (H, W) images away from their borders (where moves bring in padding)."""
    a, b = a[margin:-margin, margin:-margin].flatten(), b[margin:-margin, margin:-margin].flatten()
    return float(torch.corrcoef(torch.stack([a, b]))[0, 1])


#: Moves a strong view must not make: every shift of 1 to 3 pixels, and rotations of 5 and 10 degrees.
MOVES = [(dy, dx, 0.0) for dy in range(-3, 4) for dx in range(-3, 4) if (dy, dx) != (0, 0)]
MOVES += [(0, 0, d) for d in (-10.0, -5.0, 5.0, 10.0)]
