"""EMA teacher and the unsupervised losses of the online methods."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from teachseg.losses import BCEDiceLoss
from teachseg.selftrain.consistency import (
    confident_targets,
    fixmatch_loss,
    mean_teacher_loss,
    sigmoid_rampup,
)
from teachseg.selftrain.ema import ema_decay_at, make_ema


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Conv2d(4, 1, 1))


def test_ema_update_is_exact_with_warm_up():
    model = _net()
    ema = make_ema(model, decay=0.9)
    expected = {k: v.detach().clone().float() for k, v in model.state_dict().items()}
    for step in range(6):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
            model(torch.randn(2, 3, 8, 8))  # moves batch-norm running statistics (buffers)
        ema.update_parameters(model)
        current = {k: v.detach().float() for k, v in model.state_dict().items()}
        if step == 0:
            expected = {k: v.clone() for k, v in current.items()}  # the first update copies
        else:
            alpha = min(1 - 1 / (step + 1), 0.9)
            assert alpha == ema_decay_at(0.9, step)
            expected = {k: alpha * expected[k] + (1 - alpha) * current[k] for k in expected}
    got = ema.module.state_dict()
    for k, v in expected.items():
        if k.endswith("num_batches_tracked"):
            continue
        assert torch.allclose(got[k].float(), v, atol=1e-6), k
    assert not any(p.requires_grad for p in ema.parameters())
    assert int(ema.n_averaged) == 6


def test_ema_rejects_a_bad_decay():
    with pytest.raises(ValueError, match="decay"):
        make_ema(_net(), 1.0)


def test_rampup():
    assert sigmoid_rampup(0, 10) == pytest.approx(math.exp(-5))
    assert sigmoid_rampup(10, 10) == 1.0 and sigmoid_rampup(20, 10) == 1.0
    assert sigmoid_rampup(3, 0) == 1.0
    assert sigmoid_rampup(2, 10) < sigmoid_rampup(5, 10) < 1.0


def test_mean_teacher_loss_is_zero_when_views_agree_and_teacher_gets_no_gradient():
    logits = torch.randn(2, 1, 8, 8, requires_grad=True)
    teacher = torch.randn(2, 1, 8, 8, requires_grad=True)
    assert float(mean_teacher_loss(logits, logits.detach()).detach()) == 0.0
    loss = mean_teacher_loss(logits, teacher)
    loss.backward()
    assert loss > 0 and logits.grad is not None and teacher.grad is None


def test_confident_targets_and_fixmatch_loss():
    prob = torch.tensor([[[[0.99, 0.6], [0.02, 0.5]]]])
    hard, mask = confident_targets(prob, 0.95)
    assert hard.tolist() == [[[[1.0, 1.0], [0.0, 1.0]]]]
    assert mask.tolist() == [[[[1.0, 0.0], [1.0, 0.0]]]]
    loss = BCEDiceLoss()
    # no confident pixel: nothing to learn, loss exactly 0 with a gradient of 0
    logits = torch.randn(1, 1, 2, 2, requires_grad=True)
    none = fixmatch_loss(loss, logits, hard, torch.zeros_like(mask))
    none.backward()
    assert float(none) == 0.0 and float(logits.grad.abs().sum()) == 0.0
    # a strong view that already agrees with the confident targets costs (almost) nothing
    agree = fixmatch_loss(loss, (hard * 2 - 1) * 30, hard, mask)
    disagree = fixmatch_loss(loss, (1 - hard * 2) * 30, hard, mask)
    assert float(agree) < 1e-3 < float(disagree)
