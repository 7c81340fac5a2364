"""Strong augmentation: photometric only, reproducible per seed; CutMix moves targets with images."""

from __future__ import annotations

import math

import pytest
import torch

from teachseg.data.strong import apply_strong, cutmix, cutmix_boxes, strong_pipeline


@pytest.mark.parametrize("modality", ["ultrasound", "he", "generic"])
def test_strong_views_are_reproducible_and_in_range(modality):
    pipe = strong_pipeline(modality)
    image = torch.rand(3, 24, 24)
    a, b = apply_strong(pipe, image, 3), apply_strong(pipe, image, 3)
    assert torch.equal(a, b) and a.shape == image.shape and a.dtype == torch.float32
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    views = [apply_strong(pipe, image, s) for s in range(6)]
    assert any(not torch.equal(views[0], v) for v in views[1:])


def test_zero_strength_is_the_identity():
    image = torch.rand(3, 16, 16)
    assert torch.allclose(apply_strong(strong_pipeline("ultrasound", 0.0), image, 1), image)


def _blocks(size: int = 48, block: int = 6, seed: int = 0) -> torch.Tensor:
    """A grey (3, size, size) image of random flat blocks in [0.25, 0.75]: sharp, non-periodic edges."""
    g = torch.Generator().manual_seed(seed)
    cells = 0.25 + 0.5 * torch.rand(1, 1, size // block, size // block, generator=g)
    return torch.nn.functional.interpolate(cells, scale_factor=block, mode="nearest")[0].expand(3, -1, -1)


def _moved(image: torch.Tensor, dy: float, dx: float, degrees: float) -> torch.Tensor:
    """``image`` (H, W) rotated by ``degrees`` about its centre, then shifted by (dy, dx) pixels."""
    h, w = image.shape
    a = math.radians(degrees)
    theta = torch.tensor(
        [[math.cos(a), -math.sin(a) * h / w, -2 * dx / w], [math.sin(a) * w / h, math.cos(a), -2 * dy / h]]
    )
    grid = torch.nn.functional.affine_grid(theta[None], [1, 1, h, w], align_corners=False)
    return torch.nn.functional.grid_sample(image[None, None], grid, align_corners=False)[0, 0]


def _corr(a: torch.Tensor, b: torch.Tensor, margin: int = 8) -> float:
    a, b = a[margin:-margin, margin:-margin].flatten(), b[margin:-margin, margin:-margin].flatten()
    return float(torch.corrcoef(torch.stack([a, b]))[0, 1])


#: Moves a strong view must not make: every shift of 1 to 3 pixels, and rotations of 5 and 10 degrees.
MOVES = [(dy, dx, 0.0) for dy in range(-3, 4) for dx in range(-3, 4) if (dy, dx) != (0, 0)]
MOVES += [(0, 0, d) for d in (-10.0, -5.0, 5.0, 10.0)]


@pytest.mark.parametrize("modality", ["ultrasound", "he", "generic"])
def test_strong_view_keeps_geometry(modality):
    """Every pixel stays where it was: the strong view matches the image in place better than the image moved
    by any shift of 1-3 pixels or rotated by 5-10 degrees (colour, gamma, noise and a symmetric blur change
    values, not positions)."""
    image = _blocks()
    pipe = strong_pipeline(modality)
    for seed in range(16):
        out = apply_strong(pipe, image, seed).mean(0)
        in_place = _corr(out, image[0])
        best_move = max(MOVES, key=lambda m: _corr(out, _moved(image[0], *m)))
        assert in_place > _corr(out, _moved(image[0], *best_move)), (seed, best_move)


def test_the_geometry_check_sees_a_small_move():
    """The check above can fail: a 2-pixel shift or a 7-degree rotation of the image is caught."""
    image = _blocks()[0]
    for move in [(2.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, 7.0)]:
        out = _moved(image, *move)
        assert _corr(out, image) < max(_corr(out, _moved(image, *m)) for m in MOVES), move


def test_cutmix_moves_targets_with_images():
    g = torch.Generator().manual_seed(0)
    boxes = cutmix_boxes(4, 16, 16, g, p=1.0)
    assert boxes.any(dim=(1, 2, 3)).all()
    assert not cutmix_boxes(4, 16, 16, g, p=0.0).any()
    images = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 3, 16, 16)
    target = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 1, 16, 16)
    order = torch.tensor([1, 2, 3, 0])
    mixed, (t,) = cutmix(images, [target], boxes, order)
    assert torch.equal(mixed[:, :1], t)  # every pixel's target came from the image its pixel came from
    assert torch.equal(mixed[:, :1][boxes], order.view(4, 1, 1, 1).float().expand(4, 1, 16, 16)[boxes])
    same, _ = cutmix(images, [target], boxes, torch.arange(4))
    assert torch.equal(same, images)
