"""Groups a split keeps together: ``group_regex``, tiles of one slide (tile manifests) and duplicates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from teachseg.data.grouping import slides_from_manifests
from teachseg.data.splits import make_split
from teachseg.errors import ConfigError
from tests.data.split_samples import all_ids, class_samples, samples_with_duplicates, slide_of, tile_samples


def test_groups_never_straddle_splits() -> None:
    # 4 images per patient: "a_p03_001.png" -> patient "p03"
    samples = class_samples({"a": 40, "b": 24}, name="{cls}_p{p:02d}_{i:03d}.png")
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
    samples = class_samples({"a": 10})
    split = make_split(samples, seed=0, val_fraction=0.3, group_regex=r"^nomatch(\d+)")
    assert len(split.val) == 3


def test_tiles_of_one_slide_never_straddle_splits_and_bind_the_unlabelled_pool() -> None:
    samples = tile_samples({"slideA": 6, "slideB": 6, "slideC": 6})
    slides = {s.id: slide_of(s.id) for s in samples}
    for seed in range(6):
        split = make_split(samples, seed=seed, val_fraction=0.2, slides=slides)
        parts = {part: {slide_of(i) for i in getattr(split, part)} for part in ("train", "val", "test")}
        assert split.val and not (parts["train"] & parts["val"])
        assert split.groups == 3 and split.grouped_by == ["tile manifests"]
        # unlabelled tiles of the validation slide are left out, those of training slides are kept
        (val_slide,) = parts["val"]
        assert split.unlabelled_excluded == sorted(
            s.id for s in samples if not s.labelled and slide_of(s.id) == val_slide
        )
        assert len(split.unlabelled_excluded) == 3
        assert {slide_of(i) for i in split.unlabelled} == parts["train"]
        saved = split.to_json()
        assert saved["groups"] == 3 and saved["unlabelled_excluded_count"] == 3
    # without the slides, neighbouring tiles do straddle (so the test above is meaningful)
    plain = make_split(samples, seed=0, val_fraction=0.2)
    assert {slide_of(i) for i in plain.val} & {slide_of(i) for i in plain.train}
    assert plain.groups == 18 and plain.unlabelled_excluded == []


def test_group_regex_overrides_tile_manifests() -> None:
    samples = tile_samples({"slideA": 4, "slideB": 4}, n_unlabelled=0)
    slides = {s.id: slide_of(s.id) for s in samples}
    # one group per tile column x, whatever the slide: the regex wins
    split = make_split(samples, seed=0, val_fraction=0.25, slides=slides, group_regex=r"_(x\d+)_")
    assert split.groups == 4 and split.grouped_by == ["group_regex"]


def test_slides_from_manifests_reads_the_manifests_of_teachseg_data_tile(tmp_path: Path) -> None:
    from teachseg.data.discover import discover
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
    found = slides_from_manifests(discover(tmp_path).samples)
    assert found == {
        "images/s1_x0_y0.png": "s1",
        "unlabelled/s1_x4_y0.png": "s1",
        "images/s2_x0_y0.png": "s2",
        "unlabelled/s2_x4_y0.png": "s2",
    }


def test_duplicates_land_in_one_split_and_unlabelled_copies_of_held_out_images_are_excluded() -> None:
    samples, same = samples_with_duplicates()
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
    samples, same = samples_with_duplicates()
    dropped = make_split(samples, seed=0, val_fraction=0.25, same_content=same, duplicates="drop")
    assert dropped.duplicates_dropped == ["a/a_002.png", "b/b_000.png", "u/000.png"]
    assert not set(dropped.duplicates_dropped) & set(all_ids(dropped))
    assert dropped.groups == len(samples) - 4 - 2
    off = make_split(samples, seed=0, val_fraction=0.25, same_content=same, duplicates="off")
    assert off.groups == len(samples) - 4 and off.duplicates_dropped == [] and off.grouped_by == []
    with pytest.raises(ConfigError, match="duplicates"):
        make_split(samples, seed=0, duplicates="merge")


def test_an_unlabelled_copy_of_two_labelled_images_does_not_merge_their_groups() -> None:
    # u/000.png is a near duplicate of a/a_000.png and of b/b_000.png, which are not near each other
    samples = class_samples({"a": 12, "b": 8}, n_unlabelled=2)
    same = [["a/a_000.png", "u/000.png"], ["b/b_000.png", "u/000.png"]]
    alone = make_split([s for s in samples if s.labelled], seed=0, val_fraction=0.25, test_fraction=0.15)
    bridged_seen = 0
    for seed in range(20):
        split = make_split(samples, seed=seed, val_fraction=0.25, test_fraction=0.15, same_content=same)
        assert split.groups == 20
        where = {i: part for part in ("train", "val", "test") for i in getattr(split, part)}
        held_out = {where["a/a_000.png"], where["b/b_000.png"]} - {"train"}
        # the copy is pseudo-labelled only when neither image it copies is held out
        assert ("u/000.png" in split.unlabelled_excluded) == bool(held_out)
        assert ("u/000.png" in split.unlabelled) == (not held_out)
        bridged_seen += where["a/a_000.png"] != where["b/b_000.png"]
    assert bridged_seen  # some seed put the two images in different splits
    with_copy = make_split(samples, seed=0, val_fraction=0.25, test_fraction=0.15, same_content=same)
    assert (with_copy.train, with_copy.val, with_copy.test) == (alone.train, alone.val, alone.test)


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.integers(1, 12), min_size=1, max_size=3),
    n_unlabelled=st.integers(1, 8),
    data=st.data(),
    seed=st.integers(0, 2**16),
    held_out=st.sampled_from([(0.2, 0.0), (0.2, 0.2), (0.3, 0.1)]),
    label_fraction=st.sampled_from([1.0, 0.5, 0.25]),
    duplicates=st.sampled_from(["group", "drop"]),
)
def test_adding_unlabelled_images_never_changes_the_labelled_images_split(
    sizes: list[int],
    n_unlabelled: int,
    data: st.DataObject,
    seed: int,
    held_out: tuple[float, float],
    label_fraction: float,
    duplicates: str,
) -> None:
    """Random datasets (classes, slides, duplicate links), then unlabelled images on the same slides and
    linked to anything: the labelled images' split does not move, and the pool stays clean of anything
    tied to a validation or test image."""
    counts: dict[str | None, int] = {f"c{k}": n for k, n in enumerate(sizes)}
    labelled = class_samples(counts)
    everything = class_samples(counts, n_unlabelled=n_unlabelled)
    lab_ids = [s.id for s in labelled]
    unl_ids = [s.id for s in everything if not s.labelled]
    slide = st.sampled_from([None, "s0", "s1", "s2", "s3"])
    slides = {i: s for i in lab_ids + unl_ids if (s := data.draw(slide)) is not None}
    pair = st.lists(st.sampled_from(lab_ids), min_size=2, max_size=2)
    lab_links = data.draw(st.lists(pair, max_size=8))
    any_id = st.sampled_from(lab_ids + unl_ids)
    unl_links = data.draw(st.lists(st.tuples(st.sampled_from(unl_ids), any_id).map(list), max_size=10))
    kwargs = {
        "seed": seed,
        "val_fraction": held_out[0],
        "test_fraction": held_out[1],
        "label_fraction": label_fraction,
        "duplicates": duplicates,
    }
    before = make_split(
        labelled, slides={i: slides[i] for i in lab_ids if i in slides}, same_content=lab_links, **kwargs
    )
    after = make_split(everything, slides=slides, same_content=[*lab_links, *unl_links], **kwargs)

    for part in ("train", "val", "test", "label_dropped"):
        assert getattr(after, part) == getattr(before, part), part
    assert after.groups == before.groups
    assert sorted(set(after.duplicates_dropped) & set(lab_ids)) == before.duplicates_dropped
    # nothing tied to a held-out image (its slide, a duplicate of it) is pseudo-labelled
    held = {*after.val, *after.test}
    held_slides = {slides[i] for i in held if i in slides}
    for u in after.unlabelled:
        if u in unl_ids:
            assert slides.get(u) not in held_slides
            assert not any(u in link and set(link) & held for link in unl_links)
