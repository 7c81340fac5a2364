"""Splits: seeded, stratified, grouped, label dropping, and saving."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from teachseg.data.records import Sample
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


def test_label_fraction_nested_when_largest_remainder_would_break_it() -> None:
    # 1 + 3 + 3 training images: largest-remainder quotas give class "a" a mask at 3 kept images and
    # take it back at 4 (the Alabama paradox), so 0.45 kept an image that 0.5 dropped.
    samples = _samples({"a": 1, "b": 3, "c": 3})
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
    samples = _samples({f"c{k}": n for k, n in enumerate(sizes)}, n_unlabelled=2)
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


# ------------------------------------------------------------------------ slides, duplicates (issue 8)


def _tile_samples(slides: dict[str, int], n_unlabelled: int = 3, stride: int = 128) -> list[Sample]:
    """Overlapping 256 px tiles (stride 128) of each slide, named as `teachseg tile` names them."""
    out = []
    for slide, n in slides.items():
        for i in range(n + n_unlabelled):
            stem = f"{slide}_x{i * stride}_y0"
            if i < n:
                out.append(
                    Sample(
                        id=f"images/{stem}.png",
                        image=Path(f"/t/images/{stem}.png"),
                        masks=(Path(f"/t/masks/{stem}.png"),),
                    )
                )
            else:
                out.append(Sample(id=f"unlabelled/{stem}.png", image=Path(f"/t/unlabelled/{stem}.png")))
    return out


def _slide_of(sample_id: str) -> str:
    return sample_id.split("/")[1].split("_x")[0]


def test_tiles_of_one_slide_never_straddle_splits_and_bind_the_unlabelled_pool() -> None:
    samples = _tile_samples({"slideA": 6, "slideB": 6, "slideC": 6})
    slides = {s.id: _slide_of(s.id) for s in samples}
    for seed in range(6):
        split = make_split(samples, seed=seed, val_fraction=0.2, slides=slides)
        parts = {part: {_slide_of(i) for i in getattr(split, part)} for part in ("train", "val", "test")}
        assert split.val and not (parts["train"] & parts["val"])
        assert split.groups == 3 and split.grouped_by == ["tile manifests"]
        # unlabelled tiles of the validation slide are left out, those of training slides are kept
        (val_slide,) = parts["val"]
        assert split.unlabelled_excluded == sorted(
            s.id for s in samples if not s.labelled and _slide_of(s.id) == val_slide
        )
        assert len(split.unlabelled_excluded) == 3
        assert {_slide_of(i) for i in split.unlabelled} == parts["train"]
        saved = split.to_json()
        assert saved["groups"] == 3 and saved["unlabelled_excluded_count"] == 3
    # without the slides, neighbouring tiles do straddle (so the test above is meaningful)
    plain = make_split(samples, seed=0, val_fraction=0.2)
    assert {_slide_of(i) for i in plain.val} & {_slide_of(i) for i in plain.train}
    assert plain.groups == 18 and plain.unlabelled_excluded == []


def test_group_regex_overrides_tile_manifests() -> None:
    samples = _tile_samples({"slideA": 4, "slideB": 4}, n_unlabelled=0)
    slides = {s.id: _slide_of(s.id) for s in samples}
    # one group per tile column x, whatever the slide: the regex wins
    split = make_split(samples, seed=0, val_fraction=0.25, slides=slides, group_regex=r"_(x\d+)_")
    assert split.groups == 4 and split.grouped_by == ["group_regex"]


def test_tile_slides_reads_the_manifests_of_teachseg_tile(tmp_path: Path) -> None:
    from teachseg.data.discover import discover
    from teachseg.data.splits import tile_slides
    from teachseg.io import write_json, write_png

    img = np.zeros((8, 8, 3), np.uint8)
    for slide in ("s1", "s2"):
        names = [f"{slide}_x0_y0", f"{slide}_x4_y0"]
        write_png(tmp_path / "images" / f"{names[0]}.png", img)
        write_png(tmp_path / "masks" / f"{names[0]}.png", img[..., 0])
        write_png(tmp_path / "unlabelled" / f"{names[1]}.png", img)
        write_json(
            tmp_path / f"{slide}_tiles.json",
            {"slide": f"/slides/{slide}.svs", "tiles": [{"name": names[0]}, {"name": names[1]}]},
        )
    write_png(tmp_path / "unlabelled" / "other.png", img)  # in no manifest: its own group
    (tmp_path / "broken_tiles.json").write_text("{", encoding="utf-8")  # ignored
    found = tile_slides(discover(tmp_path).samples)
    assert found == {
        "images/s1_x0_y0.png": "s1",
        "unlabelled/s1_x4_y0.png": "s1",
        "images/s2_x0_y0.png": "s2",
        "unlabelled/s2_x4_y0.png": "s2",
    }


def _dup_samples() -> tuple[list[Sample], list[list[str]]]:
    samples = _samples({"a": 12, "b": 8}, n_unlabelled=4)
    # an exact pair across classes, a near (resized) pair, and an unlabelled copy of a labelled image
    same = [["a/a_000.png", "b/b_000.png"], ["a/a_001.png", "a/a_002.png"], ["a/a_003.png", "u/000.png"]]
    return samples, same


def test_duplicates_land_in_one_split_and_unlabelled_copies_of_held_out_images_are_excluded() -> None:
    samples, same = _dup_samples()
    excluded_seen = 0
    for seed in range(20):
        split = make_split(samples, seed=seed, val_fraction=0.25, test_fraction=0.15, same_content=same)
        where = {i: part for part in ("train", "val", "test") for i in getattr(split, part)}
        where.update({i: "train" for i in split.label_dropped})
        assert where["a/a_000.png"] == where["b/b_000.png"]
        assert where["a/a_001.png"] == where["a/a_002.png"]
        assert split.groups == len(samples) - 4 - 2 and "duplicates" in split.grouped_by
        if where["a/a_003.png"] in ("val", "test"):
            assert split.unlabelled_excluded == ["u/000.png"] and "u/000.png" not in split.unlabelled
            excluded_seen += 1
        else:
            assert split.unlabelled_excluded == [] and "u/000.png" in split.unlabelled
    assert excluded_seen  # some seed put the copied image in val/test


def test_duplicates_drop_keeps_one_labelled_image_and_off_ignores_them() -> None:
    samples, same = _dup_samples()
    dropped = make_split(samples, seed=0, val_fraction=0.25, same_content=same, duplicates="drop")
    assert dropped.duplicates_dropped == ["a/a_002.png", "b/b_000.png", "u/000.png"]
    assert not set(dropped.duplicates_dropped) & set(_all_ids(dropped))
    assert dropped.groups == len(samples) - 4 - 2
    off = make_split(samples, seed=0, val_fraction=0.25, same_content=same, duplicates="off")
    assert off.groups == len(samples) - 4 and off.duplicates_dropped == [] and off.grouped_by == []
    with pytest.raises(ConfigError, match="duplicates"):
        make_split(samples, seed=0, duplicates="merge")


def test_new_split_fields_round_trip_and_old_files_still_load() -> None:
    samples, same = _dup_samples()
    split = make_split(samples, seed=3, val_fraction=0.25, same_content=same)
    assert Split.from_json(json.loads(json.dumps(split.to_json()))) == split
    old = {
        k: v
        for k, v in split.to_json().items()
        if k
        in {
            "format",
            "train",
            "val",
            "test",
            "unlabelled",
            "label_dropped",
            "seed",
            "val_fraction",
            "test_fraction",
            "label_fraction",
            "group_regex",
            "classes",
        }
    }
    loaded = Split.from_json(old)
    assert loaded.groups == 0 and loaded.unlabelled_excluded == [] and loaded.duplicates == "off"
