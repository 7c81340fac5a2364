"""Strong augmentation: photometric only, reproducible per seed; CutMix moves targets with images."""

from __future__ import annotations

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


def test_strong_view_keeps_geometry():
    """A bright square stays where it was (no pixel moves; blur may soften its edge by a few pixels)."""
    image = torch.zeros(3, 32, 32)
    image[:, 8:16, 20:28] = 1.0
    pipe = strong_pipeline("he")
    for seed in range(5):
        out = apply_strong(pipe, image, seed).mean(0)
        inside, outside = out[10:14, 22:26].mean(), out[24:, :12].mean()
        assert inside > outside


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
