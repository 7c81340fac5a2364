"""Strong augmentation: photometric only, reproducible per seed; CutMix moves targets with images."""

from __future__ import annotations

import pytest
import torch

from teachseg.data.strong import apply_strong, cutmix, cutmix_boxes, strong_pipeline
from tests.data.geometry import MOVES, blocks, corr, moved


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


@pytest.mark.parametrize("modality", ["ultrasound", "he", "generic"])
def test_strong_view_keeps_geometry(modality):
    """Every pixel stays where it was: the strong view matches the image in place better than the image moved
    by any shift of 1-3 pixels or rotated by 5-10 degrees (colour, gamma, noise and a symmetric blur change
    values, not positions)."""
    image = blocks()
    pipe = strong_pipeline(modality)
    for seed in range(16):
        out = apply_strong(pipe, image, seed).mean(0)
        in_place = corr(out, image[0])
        best_move = max(MOVES, key=lambda m: corr(out, moved(image[0], *m)))
        assert in_place > corr(out, moved(image[0], *best_move)), (seed, best_move)


def test_the_geometry_check_sees_a_small_move():
    """The check above can fail: a 2-pixel shift or a 7-degree rotation of the image is caught."""
    image = blocks()[0]
    for move in [(2.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, 7.0)]:
        out = moved(image, *move)
        assert corr(out, image) < max(corr(out, moved(image, *m)) for m in MOVES), move


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
