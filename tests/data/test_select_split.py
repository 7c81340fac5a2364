"""The selection split (data.select_fraction): drawn from what val/test leave, by class and whole groups, kept
out of the unlabelled pool, and without changing val or test (#32)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from teachseg.data.records import Sample
from teachseg.data.split_record import Split
from teachseg.data.splits import make_split
from teachseg.errors import ConfigError
from tests.data.split_samples import class_samples


def test_selection_is_a_stratified_share_and_val_test_do_not_move() -> None:
    samples = class_samples({"a": 60, "b": 40}, n_unlabelled=10)
    plain = make_split(samples, seed=5, val_fraction=0.1, test_fraction=0.2)
    split = make_split(samples, seed=5, val_fraction=0.1, test_fraction=0.2, select_fraction=0.1)
    assert (split.val, split.test) == (plain.val, plain.test)
    assert len(split.select) == 10 and split.select_fraction == 0.1
    assert Counter(i.split("/")[0] for i in split.select) == {"a": 6, "b": 4}
    # a partition: the selection images left train, and nothing else moved
    assert sorted([*split.train, *split.select]) == sorted(plain.train)
    assert not set(split.select) & (set(split.val) | set(split.test) | set(split.unlabelled))
    assert split.labelled == [*split.train, *split.val, *split.test, *split.select]


def test_without_a_selection_fraction_the_split_is_the_one_before() -> None:
    samples = class_samples({"a": 30, "b": 10}, n_unlabelled=5)
    split = make_split(samples, seed=3, val_fraction=0.2, test_fraction=0.1, label_fraction=0.5)
    assert split.select == [] and split.select_fraction == 0.0
    # the same draw, seed for seed, as the fields the split had before
    again = make_split(
        samples, seed=3, val_fraction=0.2, test_fraction=0.1, label_fraction=0.5, select_fraction=0
    )
    assert again == split


def test_selection_is_drawn_per_seed_and_labels_still_nest() -> None:
    samples = class_samples({"a": 40, "b": 40})
    one = make_split(samples, seed=1, val_fraction=0.1, select_fraction=0.1)
    assert make_split(samples, seed=2, val_fraction=0.1, select_fraction=0.1).select != one.select
    quarter = make_split(samples, seed=1, val_fraction=0.1, select_fraction=0.1, label_fraction=0.25)
    eighth = make_split(samples, seed=1, val_fraction=0.1, select_fraction=0.1, label_fraction=0.125)
    assert quarter.select == eighth.select == one.select
    assert set(eighth.train) < set(quarter.train) < set(one.train)


def test_a_group_goes_to_selection_whole_and_its_unlabelled_images_are_not_pseudo_labelled() -> None:
    # 4 images per patient (p0 .. p9), and one unlabelled image of every patient
    labelled = class_samples({"a": 40}, name="p{p}_{i:03d}.png")
    unlabelled = [Sample(id=f"u/p{p}_u.png", image=Path(f"/d/u/p{p}_u.png")) for p in range(10)]
    split = make_split(
        [*labelled, *unlabelled], seed=0, val_fraction=0.1, select_fraction=0.2, group_regex=r"^(p\d+)_"
    )

    def patients(ids: list[str]) -> set[str]:
        return {Path(i).name.split("_")[0] for i in ids}

    assert len(split.select) == 8 and len(patients(split.select)) == 2
    assert not patients(split.select) & patients(split.train)
    held_out = patients([*split.val, *split.select])
    assert patients(split.unlabelled_excluded) == held_out
    assert not patients(split.unlabelled) & held_out


@pytest.mark.parametrize(
    "kwargs",
    [{"select_fraction": -0.1}, {"select_fraction": 1.0}, {"val_fraction": 0.5, "select_fraction": 0.5}],
)
def test_bad_selection_fractions_raise_config_error(kwargs: dict) -> None:
    with pytest.raises(ConfigError, match="data.select_fraction"):
        make_split(class_samples({"a": 10}), seed=0, **kwargs)


def test_split_json_keeps_the_selection_and_the_modality() -> None:
    split = make_split(class_samples({"a": 20}), seed=0, val_fraction=0.1, select_fraction=0.1)
    split = replace(split, modality="ultrasound")
    again = Split.from_json(split.to_json())
    assert again == split and again.select and again.modality == "ultrasound"
    # files from before the selection split read as having none
    old = {k: v for k, v in split.to_json().items() if k not in ("select", "select_fraction", "modality")}
    assert Split.from_json(old).select == [] and Split.from_json(old).modality is None
