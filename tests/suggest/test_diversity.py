"""The greedy choice: informativeness times distance, so near-copies do not take the whole budget."""

from __future__ import annotations

import numpy as np
import pytest

from teachseg.errors import ConfigError
from teachseg.suggest.diversity import random_choice, select


def ten_copies_and_ten_distinct() -> tuple[np.ndarray, np.ndarray]:
    """Candidates 0-9: one hard image ten times (same features, informativeness 1); 10-19: ten distinct
    images, less informative (0.3-0.5)."""
    rng = np.random.default_rng(0)
    hard = rng.normal(size=16)
    distinct = rng.normal(size=(10, 16))
    features = np.vstack([np.tile(hard, (10, 1)), distinct])
    info = np.r_[np.ones(10), np.linspace(0.3, 0.5, 10)]
    return info, features


def test_diversity_takes_one_copy_of_the_hard_image_and_then_the_distinct_ones():
    info, features = ten_copies_and_ten_distinct()
    chosen = [p.index for p in select(info, features, 10, diversity=1.0)]
    assert chosen[0] < 10  # the hard image first: it is the most informative
    assert sum(i < 10 for i in chosen) == 1
    assert len(set(chosen) & set(range(10, 20))) == 9


def test_uncertainty_alone_spends_the_budget_on_the_copies():
    # diversity 0 is the uncertainty-only ranking: the guard of the test above
    info, features = ten_copies_and_ten_distinct()
    chosen = [p.index for p in select(info, features, 10, diversity=0.0)]
    assert sorted(chosen) == list(range(10))


def test_a_candidate_like_a_labelled_image_comes_last():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(5, 8))
    info = np.ones(5)
    picks = select(info, features, 5, diversity=1.0, anchors=features[2:3] * 3.0)  # same direction as 2
    assert picks[-1].index == 2
    assert picks[-1].distance == pytest.approx(0.0, abs=1e-6)


def test_duplicates_in_the_pool_are_chosen_once():
    info, features = ten_copies_and_ten_distinct()
    features = np.random.default_rng(2).normal(size=features.shape)  # all distinct in feature space
    groups = {i: "hard" for i in range(10)}
    chosen = [p.index for p in select(info, features, 10, diversity=0.0, groups=groups)]
    assert sum(i < 10 for i in chosen) == 1
    with pytest.raises(ConfigError, match="duplicates of the chosen"):
        select(info, features, 12, diversity=0.0, groups=groups)


def test_the_choice_is_deterministic_for_a_seed_and_ties_follow_it():
    info, features = np.zeros(30), np.ones((30, 4))  # all tied
    a = [p.index for p in select(info, features, 5, seed=3)]
    assert a == [p.index for p in select(info, features, 5, seed=3)]
    assert {tuple(p.index for p in select(info, features, 5, seed=s)) for s in range(5)} != {tuple(a)}


def test_parts_of_each_pick():
    info, features = ten_copies_and_ten_distinct()
    picks = select(info, features, 3)
    assert picks[0].informativeness == pytest.approx(1.0) and picks[0].distance == pytest.approx(1.0)
    assert all(0.0 <= p.distance <= 1.0 and 0.0 <= p.informativeness <= 1.0 for p in picks)
    assert picks[1].score == pytest.approx((picks[1].informativeness + 0.01) * picks[1].distance)


def test_budget_larger_than_the_pool_is_refused():
    with pytest.raises(ConfigError, match="larger than the pool of 3"):
        select(np.ones(3), np.eye(3), 4)
    with pytest.raises(ConfigError):
        select(np.ones(3), np.eye(3), 0)


def test_random_choice_is_seeded():
    assert random_choice(20, 5, seed=1) == random_choice(20, 5, seed=1)
    assert len(set(random_choice(20, 5, seed=1))) == 5
    with pytest.raises(ConfigError):
        random_choice(3, 4)
