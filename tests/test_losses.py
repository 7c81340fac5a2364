"""BCE + Dice: hard targets, soft targets, weight maps, per-image vs per-batch Dice, confidence weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from teachseg.losses import BCEDiceLoss, confidence_weight


def _manual(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    p = torch.sigmoid(logits)
    bce = -(target * torch.log(p) + (1 - target) * torch.log(1 - p)).mean()
    dice = (2 * (p * target).sum() + smooth) / (p.sum() + target.sum() + smooth)
    return bce + (1 - dice)


def test_hard_targets_match_a_manual_computation() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 1, 8, 8, generator=g, dtype=torch.float64)
    target = (torch.rand(2, 1, 8, 8, generator=g) > 0.5).double()
    got = BCEDiceLoss()(logits, target)
    assert float(got) == pytest.approx(float(_manual(logits, target)), rel=1e-5)
    # the weights scale the terms
    bce_only = BCEDiceLoss(bce_weight=2.0, dice_weight=0.0)(logits, target)
    assert float(bce_only) == pytest.approx(
        2 * float(F.binary_cross_entropy_with_logits(logits, target)), rel=1e-5
    )


def test_soft_targets_bce_is_minimal_at_the_target_logit() -> None:
    target = torch.tensor([0.1, 0.3, 0.5, 0.8, 0.95]).view(1, 1, 1, 5)
    logits = torch.logit(target).clone().requires_grad_(True)
    loss = BCEDiceLoss(bce_weight=1.0, dice_weight=0.0)(logits, target)
    loss.backward()
    assert logits.grad is not None
    assert logits.grad.abs().max() < 1e-6
    # and moving away from it increases the loss
    for delta in (-0.5, 0.5):
        moved = BCEDiceLoss(dice_weight=0.0)(logits.detach() + delta, target)
        assert float(moved) > float(loss.detach())


def test_zero_weight_pixels_do_not_contribute() -> None:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 1, 6, 6, generator=g)
    target = (torch.rand(2, 1, 6, 6, generator=g) > 0.5).float()
    weight = torch.ones_like(target)
    weight[:, :, :3] = 0  # top half ignored
    changed = logits.clone()
    changed[:, :, :3] = torch.randn(2, 1, 3, 6, generator=g) * 10
    for per_image in (False, True):
        loss = BCEDiceLoss(per_image=per_image)
        assert float(loss(logits, target, weight)) == pytest.approx(
            float(loss(changed, target, weight)), abs=1e-6
        )
        # without the weight map the change is seen
        assert abs(float(loss(logits, target)) - float(loss(changed, target))) > 1e-3
    # a weight map of ones is the same as none
    assert float(BCEDiceLoss()(logits, target, torch.ones_like(target))) == pytest.approx(
        float(BCEDiceLoss()(logits, target))
    )


def test_per_image_and_per_batch_dice_differ_as_documented() -> None:
    # image 0: large object predicted perfectly; image 1: empty mask with a few false positives.
    big = 20.0
    target = torch.zeros(2, 1, 8, 8)
    target[0, 0, :4] = 1
    logits = torch.full((2, 1, 8, 8), -big)
    logits[0, 0, :4] = big
    logits[1, 0, 0, :2] = big
    batch = BCEDiceLoss(bce_weight=0, smooth=0.0)(logits, target)
    per_image = BCEDiceLoss(bce_weight=0, smooth=0.0, per_image=True)(logits, target)
    # pooled: Dice = 2*32 / (34 + 32); per image: mean(1 - 1, 1 - 0) = 0.5
    assert float(batch) == pytest.approx(1 - 64 / 66, abs=1e-4)
    assert float(per_image) == pytest.approx(0.5, abs=1e-4)


def test_both_weights_zero_is_not_hidden_by_loss() -> None:
    # the config refuses it; the loss itself returns 0 (nothing to optimise)
    assert float(BCEDiceLoss(0.0, 0.0)(torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2))) == 0.0


def test_confidence_weight_modes() -> None:
    p = torch.tensor([0.0, 0.25, 0.5, 0.7, 1.0])
    assert torch.allclose(confidence_weight(p, "linear"), torch.tensor([1.0, 0.5, 0.0, 0.4, 1.0]))
    assert torch.equal(confidence_weight(p, "threshold", 0.7), torch.tensor([1.0, 1.0, 0.0, 1.0, 1.0]))
    assert torch.equal(confidence_weight(p, "threshold", 0.8), torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0]))
    assert torch.equal(confidence_weight(p, "none"), torch.ones(5))
    with pytest.raises(ValueError, match="linear, threshold or none"):
        confidence_weight(p, "cubic")
