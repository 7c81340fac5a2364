"""Masks are never images: ``*_mask`` files, mask folders and two-valued folders stay out of the images."""

from __future__ import annotations

from pathlib import Path

import pytest

from teachseg.data.discover import discover
from teachseg.errors import DataError
from tests.data.dataset_files import (
    BUSI,
    is_mask_name,
    make_busi_folder,
    write_image,
    write_mask,
    write_mask01,
    write_photo,
)


@pytest.mark.parametrize("where", ["benign", "", "benign+normal"])
def test_unlabelled_dirs_at_a_busi_folder_yield_no_mask_as_image(tmp_path: Path, where: str) -> None:
    write_image(tmp_path / "ds/images/a.png")
    write_mask(tmp_path / "ds/masks/a.png")
    busi = make_busi_folder(tmp_path / "busi")
    dirs = [busi / part for part in where.split("+")] if where else [busi]
    d = discover(tmp_path / "ds", unlabelled_dirs=dirs)
    extra = [s for s in d.samples if not s.id.startswith("images/")]
    assert extra and not any(is_mask_name(s) for s in extra)
    assert all(not s.labelled for s in extra)
    names = sorted(s.image.name for s in extra)
    expected_images = {"benign": 2, "": 3, "benign+normal": 3}[where]
    assert len(names) == expected_images and all("_mask" not in n for n in names)
    assert d.masks_skipped == {"benign": 3, "": 4, "benign+normal": 4}[where]
    assert d.mask_like == []  # recognised as masks by name: skipped, not a risk


def test_unlabelled_dirs_skip_mask_folders_and_the_datasets_own_masks(tmp_path: Path) -> None:
    write_photo(tmp_path / "ds/imgs/a.tif")
    write_mask01(tmp_path / "ds/labels/a.png")
    write_photo(tmp_path / "more/scans/u.png", seed=1)
    write_mask(tmp_path / "more/masks/u.png")  # a folder named like masks
    write_mask(tmp_path / "more/annot/v.png")  # a folder that holds masks by content
    d = discover(tmp_path / "ds", unlabelled_dirs=[tmp_path / "more"])
    assert [s.id for s in d.unlabelled] == ["more/scans/u.png"]
    assert d.masks_skipped == 1 and d.mask_like == [tmp_path / "more/annot/v.png"]
    # Pointing unlabelled_dirs at the dataset's own mask folder (any name) is refused: it holds no image.
    with pytest.raises(DataError, match="holds only masks") as err:
        discover(tmp_path / "ds", unlabelled_dirs=[tmp_path / "ds/labels"])
    assert "\n" not in str(err.value)


def test_mask_named_files_among_images_or_unlabelled_are_not_images(tmp_path: Path) -> None:
    write_photo(tmp_path / "ds/images/a.png")
    write_mask(tmp_path / "ds/masks/a.png")
    write_mask(tmp_path / "ds/images/a_mask.png")  # a stray mask among the images
    write_photo(tmp_path / "ds/unlabelled/u.png", seed=1)
    write_mask(tmp_path / "ds/unlabelled/u_mask_1.png")
    write_mask(tmp_path / "ds/unlabelled/masks/v.png")
    d = discover(tmp_path / "ds")
    assert [s.id for s in d.samples] == ["images/a.png", "unlabelled/u.png"]
    assert [p.relative_to(tmp_path / "ds").as_posix() for p in d.mask_like] == [
        "images/a_mask.png",
        "unlabelled/masks/v.png",
        "unlabelled/u_mask_1.png",
    ]
    # A folder of images only: an orphan *_mask file is no image either.
    write_photo(tmp_path / "flat/b.png")
    write_mask(tmp_path / "flat/c_mask.png")
    flat = discover(tmp_path / "flat")
    assert flat.layout == "unlabelled" and [s.id for s in flat.samples] == ["b.png"]
    assert flat.mask_like == [tmp_path / "flat/c_mask.png"]


@pytest.mark.skipif(not BUSI.exists(), reason="../shared/data/busi not present")
def test_unlabelled_dirs_at_the_real_busi_normal_folder(tmp_path: Path) -> None:
    write_image(tmp_path / "images/a.png")
    write_mask(tmp_path / "masks/a.png")
    d = discover(tmp_path, unlabelled_dirs=[BUSI / "normal"])
    extra = [s for s in d.unlabelled if s.id.startswith("normal/")]
    n_masks = sum(1 for p in (BUSI / "normal").iterdir() if "_mask" in p.name)
    assert len(extra) == 105 and d.masks_skipped == n_masks
    assert not any("_mask" in s.image.name for s in extra)
