"""Splits: seeded, stratified, grouped, label dropping, and saving."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from teachseg.data.discover import Sample
from teachseg.data.splits import Split, make_split
from teachseg.errors import ConfigError, DataError


def _samples(
    counts: dict[str | None, int], n_unlabelled: int = 0, name: str = "{cls}_{i:03d}.png"
) -> list[Sample]:
    out = []
    for cls, n in counts.items():
        for i in range(n):
            file = name.format(cls=cls, i=i, p=i // 4)
            out.append(
                Sample(
                    id=f"{cls}/{file}", image=Path(f"/d/{cls}/{file}"), masks=(Path(f"/m/{file}"),), cls=cls
                )
            )
    for i in range(n_unlabelled):
        out.append(Sample(id=f"u/{i:03d}.png", image=Path(f"/d/u/{i:03d}.png")))
    return out


def _all_ids(split: Split) -> list[str]:
    return [*split.train, *split.val, *split.test, *split.unlabelled]


def test_partition_and_unlabelled_never_in_val_or_test() -> None:
    samples = _samples({"a": 30, "b": 10}, n_unlabelled=15)
    split = make_split(samples, seed=1, val_fraction=0.2, test_fraction=0.1)
    ids = _all_ids(split)
    assert sorted(ids) == sorted(s.id for s in samples) and len(ids) == len(set(ids))
    unl = {s.id for s in samples if not s.labelled}
    assert not unl & set(split.val) and not unl & set(split.test) and not unl & set(split.train)
    assert set(split.unlabelled) == unl and split.label_dropped == []
    assert (len(split.val), len(split.test), len(split.train)) == (8, 4, 28)
    assert split.classes["u/000.png"] is None and split.classes["a/a_000.png"] == "a"


def test_deterministic_per_seed_and_order_independent() -> None:
    samples = _samples({"a": 40, "b": 20})
    one = make_split(samples, seed=3, val_fraction=0.25)
    assert make_split(list(reversed(samples)), seed=3, val_fraction=0.25) == one
    assert make_split(samples, seed=4, val_fraction=0.25).val != one.val


def test_stratified_by_class() -> None:
    split = make_split(
        _samples({"benign": 348, "malignant": 159, "normal": 105}),
        seed=0,
        val_fraction=0.1,
        test_fraction=0.2,
    )
    val = Counter(i.split("/")[0] for i in split.val)
    test = Counter(i.split("/")[0] for i in split.test)
    assert val == {"benign": 35, "malignant": 16, "normal": 10}
    assert test == {"benign": 69, "malignant": 32, "normal": 21}


def test_every_class_gets_a_val_image_and_tiny_sets_work() -> None:
    split = make_split(_samples({"big": 50, "rare": 2}), seed=0, val_fraction=0.05)
    assert Counter(i.split("/")[0] for i in split.val)["rare"] == 1
    assert any(i.startswith("rare/") for i in split.train)
    tiny = make_split(_samples({None: 2}), seed=0, val_fraction=0.05)
    assert (len(tiny.train), len(tiny.val)) == (1, 1)
    one = make_split(_samples({None: 1}), seed=0, val_fraction=0.5)
    assert (len(one.train), len(one.val)) == (1, 0)


def test_groups_never_straddle_splits() -> None:
    # 4 images per patient: "a_p03_001.png" -> patient "p03"
    samples = _samples({"a": 40, "b": 24}, name="{cls}_p{p:02d}_{i:03d}.png")
    split = make_split(samples, seed=5, val_fraction=0.2, test_fraction=0.2, group_regex=r"_(p\d+)_")
    where: dict[str, set[str]] = {}
    for part in ("train", "val", "test"):
        for i in getattr(split, part):
            where.setdefault(i.split("_")[0] + i.split("_")[1], set()).add(part)
    assert all(len(parts) == 1 for parts in where.values())
    assert split.val and split.test
    assert len(split.val) % 4 == 0 and len(split.test) % 4 == 0
    # without the regex, patients do straddle (so the test above is meaningful)
    plain = make_split(samples, seed=5, val_fraction=0.2, test_fraction=0.2)
    where_plain: dict[str, set[str]] = {}
    for part in ("train", "val", "test"):
        for i in getattr(plain, part):
            where_plain.setdefault(i.split("_")[1], set()).add(part)
    assert any(len(parts) > 1 for parts in where_plain.values())


def test_group_regex_without_match_uses_own_id() -> None:
    samples = _samples({"a": 10})
    split = make_split(samples, seed=0, val_fraction=0.3, group_regex=r"^nomatch(\d+)")
    assert len(split.val) == 3


def test_label_fraction_drops_masks_stratified_and_nested() -> None:
    samples = _samples({"a": 60, "b": 20}, n_unlabelled=5)
    full = make_split(samples, seed=2, val_fraction=0.2)
    quarter = make_split(samples, seed=2, val_fraction=0.2, label_fraction=0.25)
    tenth = make_split(samples, seed=2, val_fraction=0.2, label_fraction=0.1)
    assert quarter.val == full.val  # val does not depend on label_fraction
    assert len(full.train) == 64 and len(quarter.train) == 16 and len(tenth.train) == 6
    assert Counter(i[0] for i in quarter.train) == {"a": 12, "b": 4}
    assert set(quarter.label_dropped) == set(full.train) - set(quarter.train)
    assert set(quarter.unlabelled) == set(quarter.label_dropped) | {f"u/{i:03d}.png" for i in range(5)}
    assert set(tenth.train) <= set(quarter.train)
    assert len(make_split(samples, seed=2, val_fraction=0.2, label_fraction=0.001).train) == 1


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
        make_split(_samples({"a": 5}), seed=0, **kwargs)


def test_save_load_round_trip_and_errors(tmp_path: Path) -> None:
    split = make_split(
        _samples({"a": 8, "b": 4}, n_unlabelled=2),
        seed=0,
        val_fraction=0.25,
        label_fraction=0.5,
        group_regex="x",
    )
    split.save(tmp_path / "split.json")
    assert Split.load(tmp_path / "split.json") == split
    assert Split.from_json(json.loads(json.dumps(split.to_json()))) == split
    with pytest.raises(DataError, match="split file not found"):
        Split.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"train": 3}')
    with pytest.raises(DataError, match="bad.json"):
        Split.load(tmp_path / "bad.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(DataError, match="broken.json"):
        Split.load(tmp_path / "broken.json")
