"""The objectives: registered by name, finite losses that train the encoder, momentum and memory-bank state."""

from __future__ import annotations

import warnings

import pytest
import torch

from teachseg.config import PretrainConfig
from teachseg.errors import ConfigError
from teachseg.models import build_encoder
from teachseg.pretrain.objectives import OBJECTIVES, Objective, build_objective, register_objective

SETTINGS = {"temperature": 0.2, "memory_bank": 0, "dense_weight": 0.5}


def test_config_offers_exactly_the_registered_objectives() -> None:
    from typing import get_args

    assert set(get_args(PretrainConfig.model_fields["objective"].annotation)) == set(OBJECTIVES)
    assert OBJECTIVES["densecl"].dense and not OBJECTIVES["simclr"].dense


def test_unknown_objective_and_double_registration() -> None:
    with pytest.raises(ConfigError, match="unknown pretraining objective 'byol'.*densecl"):
        build_objective("byol", build_encoder("resnet18"), SETTINGS, 1)
    before = dict(OBJECTIVES)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")

            @register_objective("simclr")
            class Other(Objective):
                pass

        assert any("registered twice" in str(w.message) for w in caught)
    finally:
        OBJECTIVES.clear()
        OBJECTIVES.update(before)


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_a_step_lowers_nothing_it_should_not_and_trains_the_encoder(name: str) -> None:
    torch.manual_seed(0)
    encoder = build_encoder("resnet18")
    objective = build_objective(name, encoder, SETTINGS, total_steps=10)
    a, b = torch.randn(4, 3, 64, 64), torch.randn(4, 3, 64, 64)
    objective.before_step(0)
    loss = objective(a, b)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in encoder.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads) and any(float(g.abs().sum()) > 0 for g in grads)
    momentum = [p for n, p in objective.named_parameters() if "momentum" in n]
    assert all(not p.requires_grad for p in momentum)
    assert bool(momentum) == (name == "densecl")


def test_densecl_key_encoder_follows_the_query_encoder() -> None:
    torch.manual_seed(0)
    objective = build_objective("densecl", build_encoder("resnet18"), SETTINGS, total_steps=100)
    with torch.no_grad():
        for p in objective.encoder.parameters():
            p.add_(1.0)
    before = next(objective.encoder_momentum.parameters()).clone()
    objective.before_step(0)  # momentum 0.99: a 1% step towards the query encoder
    after = next(objective.encoder_momentum.parameters())
    target = next(objective.encoder.parameters())
    assert torch.allclose(after, 0.99 * before + 0.01 * target, atol=1e-6)


def test_memory_banks_survive_a_checkpoint() -> None:
    torch.manual_seed(0)
    settings = {**SETTINGS, "memory_bank": 64}
    a = build_objective("densecl", build_encoder("resnet18"), settings, 10)
    a(torch.randn(4, 3, 64, 64), torch.randn(4, 3, 64, 64))  # fills part of the banks
    state = a.extra_state()
    assert set(state) == {
        "criterion_global.memory_bank.bank",
        "criterion_global.memory_bank.bank_ptr",
        "criterion_local.memory_bank.bank",
        "criterion_local.memory_bank.bank_ptr",
    }
    assert int(state["criterion_local.memory_bank.bank_ptr"]) == 4 * 4  # 4 images x 2 x 2 locations
    torch.manual_seed(1)
    b = build_objective("densecl", build_encoder("resnet18"), settings, 10)
    b.load_extra_state(state)
    assert all(torch.equal(v, b.extra_state()[k]) for k, v in state.items())
    assert build_objective("simclr", build_encoder("resnet18"), SETTINGS, 10).extra_state() == {}
