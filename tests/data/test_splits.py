"""Splitting: a partition of the samples, seeded, and the settings it refuses."""

from __future__ import annotations

import pytest

from teachseg.data.splits import make_split
from teachseg.errors import ConfigError
from tests.data.split_samples import all_ids, class_samples


def test_partition_and_unlabelled_never_in_val_or_test() -> None:
    samples = class_samples({"a": 30, "b": 10}, n_unlabelled=15)
    split = make_split(samples, seed=1, val_fraction=0.2, test_fraction=0.1)
    ids = all_ids(split)
    assert sorted(ids) == sorted(s.id for s in samples) and len(ids) == len(set(ids))
    unl = {s.id for s in samples if not s.labelled}
    assert not unl & set(split.val) and not unl & set(split.test) and not unl & set(split.train)
    assert set(split.unlabelled) == unl and split.label_dropped == []
    assert (len(split.val), len(split.test), len(split.train)) == (8, 4, 28)
    assert split.classes["u/000.png"] is None and split.classes["a/a_000.png"] == "a"


def test_deterministic_per_seed_and_order_independent() -> None:
    samples = class_samples({"a": 40, "b": 20})
    one = make_split(samples, seed=3, val_fraction=0.25)
    assert make_split(list(reversed(samples)), seed=3, val_fraction=0.25) == one
    assert make_split(samples, seed=4, val_fraction=0.25).val != one.val


@pytest.mark.parametrize(
    "kwargs",
    [
        {"val_fraction": -0.1},
        {"val_fraction": 1.0},
        {"test_fraction": 1.2},
        {"val_fraction": 0.6, "test_fraction": 0.5},
        {"label_fraction": 0.0},
        {"label_fraction": 1.5},
        {"group_regex": "(unclosed"},
    ],
)
def test_bad_settings_raise_config_error(kwargs: dict) -> None:
    with pytest.raises(ConfigError, match="data\\."):
        make_split(class_samples({"a": 5}), seed=0, **kwargs)
