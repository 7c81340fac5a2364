"""Class-stratified val/test draws and nested label dropping (``label_fraction``)."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from teachseg.data.duplicates import connected
from teachseg.data.splits import make_split
from teachseg.data.stratify import interleave
from tests.data.split_samples import class_samples, linked_samples


def test_stratified_by_class() -> None:
    split = make_split(
        class_samples({"benign": 348, "malignant": 159, "normal": 105}),
        seed=0,
        val_fraction=0.1,
        test_fraction=0.2,
    )
    val = Counter(i.split("/")[0] for i in split.val)
    test = Counter(i.split("/")[0] for i in split.test)
    assert val == {"benign": 35, "malignant": 16, "normal": 10}
    assert test == {"benign": 69, "malignant": 32, "normal": 21}


def test_every_class_gets_a_val_image_and_tiny_sets_work() -> None:
    split = make_split(class_samples({"big": 50, "rare": 2}), seed=0, val_fraction=0.05)
    assert Counter(i.split("/")[0] for i in split.val)["rare"] == 1
    assert any(i.startswith("rare/") for i in split.train)
    tiny = make_split(class_samples({None: 2}), seed=0, val_fraction=0.05)
    assert (len(tiny.train), len(tiny.val)) == (1, 1)
    one = make_split(class_samples({None: 1}), seed=0, val_fraction=0.5)
    assert (len(one.train), len(one.val)) == (1, 0)


def test_label_fraction_drops_masks_stratified_and_nested() -> None:
    samples = class_samples({"a": 60, "b": 20}, n_unlabelled=5)
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


def test_label_fraction_nested_when_largest_remainder_would_break_it() -> None:
    # 1 + 3 + 3 training images: largest-remainder quotas give class "a" a mask at 3 kept images and
    # take it back at 4 (the Alabama paradox), so 0.45 kept an image that 0.5 dropped.
    samples = class_samples({"a": 1, "b": 3, "c": 3})
    small = make_split(samples, seed=0, val_fraction=0.0, label_fraction=0.45)
    large = make_split(samples, seed=0, val_fraction=0.0, label_fraction=0.5)
    assert (len(small.train), len(large.train)) == (3, 4)
    assert set(small.train) <= set(large.train)


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.integers(1, 40), min_size=1, max_size=6),
    fractions=st.lists(st.floats(0.01, 1.0), min_size=2, max_size=4),
    seed=st.integers(0, 2**16),
    held_out=st.sampled_from([(0.0, 0.0), (0.2, 0.0), (0.1, 0.2)]),
)
def test_label_fraction_nesting_property(
    sizes: list[int], fractions: list[float], seed: int, held_out: tuple[float, float]
) -> None:
    """Any class sizes: masks kept at a smaller fraction are kept at a larger one, stratified, and the
    train/val/test partition does not depend on label_fraction."""
    samples = class_samples({f"c{k}": n for k, n in enumerate(sizes)}, n_unlabelled=2)
    val_fraction, test_fraction = held_out
    splits = [
        make_split(
            samples, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction, label_fraction=f
        )
        for f in sorted(fractions)
    ]
    full = make_split(samples, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction)
    pool = Counter(i.split("/")[0] for i in full.train)
    for small, large in zip(splits, splits[1:], strict=False):
        assert set(small.train) <= set(large.train)
    for split in splits:
        assert (split.val, split.test) == (full.val, full.test)
        assert sorted([*split.train, *split.label_dropped]) == full.train
        assert len(split.train) == max(1, round(split.label_fraction * len(full.train)))
        kept = Counter(i.split("/")[0] for i in split.train)
        for cls, n in pool.items():  # each class within one image of its proportional share
            exact = len(split.train) * n / len(full.train)
            assert math.floor(exact) <= kept[cls] <= math.ceil(exact)


def _splits_a_group(kept: list[str], dropped: list[str], same: list[list[str]]) -> list[list[str]]:
    """The duplicate links with one image that keeps its mask and one that lost it."""
    keep, drop = set(kept), set(dropped)
    return [ids for ids in same if set(ids) & keep and set(ids) & drop]


def test_label_fraction_withholds_whole_groups() -> None:
    # 15 pairs of near duplicates among 60 images (BUSI has 145 pairs among 612)
    samples, same = linked_samples({"a": 40, "b": 20}, [(k, k + 1) for k in range(0, 50, 2)][:15])
    for seed in range(10):
        split = make_split(samples, seed=seed, val_fraction=0.2, label_fraction=0.25, same_content=same)
        assert split.label_dropped and not _splits_a_group(split.train, split.label_dropped, same)
        assert 11 <= len(split.train) <= 13  # round(0.25 * 48) = 12, give or take the pair at the boundary
    # a patient's images too: "a_p03_001.png" -> patient "p03"
    patients = class_samples({"a": 40, "b": 24}, name="{cls}_p{p:02d}_{i:03d}.png")
    split = make_split(patients, seed=0, val_fraction=0.2, label_fraction=0.25, group_regex=r"_(p\d+)_")
    kept = {i.split("_")[1] for i in split.train}
    assert kept and not kept & {i.split("_")[1] for i in split.label_dropped}


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.integers(1, 25), min_size=1, max_size=4),
    links=st.lists(st.tuples(st.integers(0, 101), st.integers(0, 101)), max_size=30),
    fractions=st.lists(st.floats(0.01, 1.0), min_size=2, max_size=4),
    seed=st.integers(0, 2**16),
)
def test_label_fraction_by_group_property(
    sizes: list[int], links: list[tuple[int, int]], fractions: list[float], seed: int
) -> None:
    """Any class sizes and duplicate links: masks are withheld group by group, nested across fractions, and
    the train/val/test partition does not depend on label_fraction."""
    samples, same = linked_samples({f"c{k}": n for k, n in enumerate(sizes)}, links, n_unlabelled=2)
    full = make_split(samples, seed=seed, val_fraction=0.2, same_content=same)
    groups = connected([[i for i in ids if i in full.train] for ids in same])
    largest = max((len(g) for g in groups), default=1)
    splits = [
        make_split(samples, seed=seed, val_fraction=0.2, label_fraction=f, same_content=same)
        for f in sorted(fractions)
    ]
    for small, large in zip(splits, splits[1:], strict=False):
        assert set(small.train) <= set(large.train)
    for split in splits:
        assert (split.val, split.test) == (full.val, full.test)
        assert sorted([*split.train, *split.label_dropped]) == full.train
        assert not _splits_a_group(split.train, split.label_dropped, same)
        target = max(1, round(split.label_fraction * len(full.train)))
        assert split.train and abs(len(split.train) - target) <= largest


@pytest.mark.slow
def test_busi_quarter_withholds_no_duplicate_of_a_kept_image(
    shared_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BUSI with the SSL benchmark's split (seed 21, val 0.1, test 0.2, 1/4 of the masks): before masks were
    withheld by group, 31 of the 320 withheld images shared a duplicate set with a kept one."""
    from teachseg.data.discover import discover
    from teachseg.training.prepare import same_content

    busi = shared_dir / "data" / "busi"
    if not busi.is_dir():
        pytest.skip(f"BUSI not found at {busi}")
    monkeypatch.setenv("TEACHSEG_CACHE_DIR", str(tmp_path / "cache"))
    discovery = discover(busi)
    same = same_content(discovery)
    settings = {"seed": 21, "val_fraction": 0.1, "test_fraction": 0.2, "same_content": same}
    full = make_split(discovery.samples, **settings)  # type: ignore[arg-type]
    quarter = make_split(discovery.samples, label_fraction=0.25, **settings)  # type: ignore[arg-type]
    assert (quarter.val, quarter.test) == (full.val, full.test)
    assert len(quarter.train) == round(0.25 * len(full.train)) and len(quarter.label_dropped) == 320
    assert not _splits_a_group(quarter.train, quarter.label_dropped, same)


@pytest.mark.parametrize("sizes", [[5], [1, 3, 3], [10, 1], [4, 4, 4, 1]])
def test_interleave_keeps_every_prefix_within_one_draw_of_the_share(sizes: list[int]) -> None:
    order = interleave(sizes)
    n = sum(sizes)
    assert sorted(order) == sorted((k, i) for k, size in enumerate(sizes) for i in range(size))
    taken = [0] * len(sizes)
    for t, (k, i) in enumerate(order, 1):
        assert i == taken[k]
        taken[k] += 1
        assert all(abs(taken[c] - t * sizes[c] / n) < 1 for c in range(len(sizes)))
