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


def _old_soft_dice_loss(
    logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, per_image: bool, smooth: float = 1.0
) -> torch.Tensor:
    """The soft Dice loss teachseg used before the semimetric one: exact reference on hard masks."""
    p = torch.sigmoid(logits)
    dims = (1, 2, 3) if per_image else (0, 1, 2, 3)
    inter = (weight * p * target).sum(dims)
    denom = (weight * p).sum(dims) + (weight * target).sum(dims)
    return (1 - (2 * inter + smooth) / (denom + smooth)).mean()


@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_semimetric_dice_equals_soft_dice_on_hard_masks(per_image: bool, weighted: bool) -> None:
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(3, 1, 16, 16, generator=g, dtype=torch.float64) * 3
    target = (torch.rand(3, 1, 16, 16, generator=g) > 0.6).double()
    target[2] = 0  # an empty mask
    weight = (
        torch.rand(3, 1, 16, 16, generator=g, dtype=torch.float64) if weighted else torch.ones_like(target)
    )
    got = BCEDiceLoss(bce_weight=0.0, per_image=per_image)(logits, target, weight)
    want = _old_soft_dice_loss(logits, target, weight, per_image)
    assert float(got) == pytest.approx(float(want), abs=1e-6)


def _descend(t: float, confidence: bool, steps: int = 300) -> float:
    """Probability reached by gradient descent on BCE + Dice for a uniform region of soft target ``t``."""
    target = torch.full((1, 1, 4, 4), t)
    weight = confidence_weight(target) if confidence else None
    logit = torch.zeros(1, requires_grad=True)
    opt = torch.optim.Adam([logit], lr=0.05)
    loss_fn = BCEDiceLoss()
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(logit.expand_as(target), target, weight).backward()
        opt.step()
    return float(torch.sigmoid(logit.detach()))


@pytest.mark.parametrize("t", [0.3, 0.7])
@pytest.mark.parametrize("confidence", [False, True])
def test_bce_plus_dice_converges_to_a_soft_target(t: float, confidence: bool) -> None:
    # The old weighted soft Dice drove both 0.3 and 0.7 towards 1 (over-segmentation of pseudo-labels).
    assert _descend(t, confidence) == pytest.approx(t, abs=0.02)


def test_semimetric_dice_is_zero_at_a_soft_target() -> None:
    target = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(4)) * 0.9 + 0.05
    loss = BCEDiceLoss(bce_weight=0.0, smooth=0.0)(torch.logit(target.double()), target.double())
    assert abs(float(loss)) < 1e-9


def _mixed_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(4, 1, 8, 8, generator=g, dtype=torch.float64)
    target = (torch.rand(4, 1, 8, 8, generator=g) > 0.5).double()
    target[2:] = torch.rand(2, 1, 8, 8, generator=g, dtype=torch.float64)  # soft pseudo-labels
    weight = torch.ones_like(target)
    weight[2:] = confidence_weight(target[2:])
    is_pseudo = torch.tensor([False, False, True, True])
    return logits, target, weight, is_pseudo


def _grad(loss_fn: BCEDiceLoss, logits: torch.Tensor, *args: torch.Tensor | None) -> torch.Tensor:
    x = logits.clone().requires_grad_(True)
    loss_fn(x, *args).backward()
    assert x.grad is not None
    return x.grad


@pytest.mark.parametrize("per_image", [False, True])
def test_pseudo_weight_zero_gives_the_gradient_of_the_labelled_images_alone(per_image: bool) -> None:
    logits, target, weight, is_pseudo = _mixed_batch()
    got = _grad(BCEDiceLoss(per_image=per_image, pseudo_weight=0.0), logits, target, weight, is_pseudo)
    real = _grad(BCEDiceLoss(per_image=per_image), logits[:2], target[:2], weight[:2])
    assert torch.equal(got[:2], real)
    assert torch.equal(got[2:], torch.zeros_like(got[2:]))


@pytest.mark.parametrize("per_image", [False, True])
def test_pseudo_weight_scales_the_pseudo_term(per_image: bool) -> None:
    logits, target, weight, is_pseudo = _mixed_batch()

    def grad(w: float) -> torch.Tensor:
        return _grad(BCEDiceLoss(per_image=per_image, pseudo_weight=w), logits, target, weight, is_pseudo)

    g0, g_half, g1 = grad(0.0), grad(0.5), grad(1.0)
    torch.testing.assert_close(g_half - g0, 0.5 * (g1 - g0))
    assert float((g1 - g0).abs().max()) > 1e-3
    # the loss is L_real + w * L_pseudo, each term normalised over its own images
    loss = BCEDiceLoss(per_image=per_image, pseudo_weight=0.5)(logits, target, weight, is_pseudo)
    plain = BCEDiceLoss(per_image=per_image)
    want = plain(logits[:2], target[:2], weight[:2]) + 0.5 * plain(logits[2:], target[2:], weight[2:])
    assert float(loss) == pytest.approx(float(want), rel=1e-12)


def test_a_batch_of_pseudo_images_scales_with_pseudo_weight() -> None:
    logits, target, weight, _ = _mixed_batch()
    only = torch.ones(4, dtype=torch.bool)
    losses = [float(BCEDiceLoss(pseudo_weight=w)(logits, target, weight, only)) for w in (0.1, 0.5, 1.0)]
    assert losses[0] == pytest.approx(0.1 * losses[2], rel=1e-12)
    assert losses[1] == pytest.approx(0.5 * losses[2], rel=1e-12)
    # no pseudo image: pseudo_weight plays no part and the loss is the plain one
    none = torch.zeros(4, dtype=torch.bool)
    assert float(BCEDiceLoss(pseudo_weight=0.3)(logits, target, weight, none)) == pytest.approx(
        float(BCEDiceLoss()(logits, target, weight)), rel=1e-12
    )


def test_fully_ignored_pseudo_images_give_a_finite_zero_term() -> None:
    logits, target, _, is_pseudo = _mixed_batch()
    weight = torch.ones_like(target)
    weight[2:] = 0
    for smooth in (0.0, 1.0):
        loss_fn = BCEDiceLoss(smooth=smooth, pseudo_weight=1.0)
        got = loss_fn(logits, target, weight, is_pseudo)
        assert float(got) == pytest.approx(
            float(BCEDiceLoss(smooth=smooth)(logits[:2], target[:2])), rel=1e-12
        )


def test_a_batch_of_pseudo_images_with_pseudo_weight_zero_backpropagates_zero():
    """The control arm (pseudo_weight=0) meets batches holding only pseudo-labelled images: the loss must stay
    in the graph (backward works) and give zero gradients."""
    logits = torch.randn(3, 1, 8, 8, requires_grad=True)
    target = torch.rand(3, 1, 8, 8)
    loss = BCEDiceLoss(pseudo_weight=0.0)(logits, target, is_pseudo=torch.tensor([True, True, True]))
    assert float(loss) == 0.0
    loss.backward()
    assert logits.grad is not None and torch.count_nonzero(logits.grad) == 0
