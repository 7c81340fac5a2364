"""Dataset discovery, the entry point: unlabelled folders, missing folders, and the arguments it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from teachseg.data.discover import discover
from teachseg.errors import DataError
from tests.data.dataset_files import write_image, write_mask, write_mask01, write_photo


def test_unlabelled_layout_and_extra_dirs(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_image(root / "x.png")
    write_image(root / "sub/y.bmp")
    (root / "notes.txt").write_text("not an image")
    extra = tmp_path / "more"
    write_image(extra / "x.png")
    d = discover(root, unlabelled_dirs=[extra, root / "sub"])
    assert d.layout == "unlabelled"
    # root/sub is already part of the dataset: not added twice
    assert [s.id for s in d.samples] == ["more/x.png", "sub/y.bmp", "x.png"]
    assert not d.labelled


def test_unlabelled_dirs_ids_stay_unique(tmp_path: Path) -> None:
    write_image(tmp_path / "ds/images/a.png")
    write_mask(tmp_path / "ds/masks/a.png")
    write_image(tmp_path / "one/images/a.png")
    write_image(tmp_path / "two/images/a.png")
    d = discover(tmp_path / "ds", unlabelled_dirs=[tmp_path / "one/images", tmp_path / "two/images"])
    ids = [s.id for s in d.samples]
    assert len(ids) == len(set(ids)) == 3


# --------------------------------------------------------------------------------------------- problems


def test_missing_root_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="dataset folder not found") as err:
        discover(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(err.value)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty/readme.txt").write_text("x")
    with pytest.raises(DataError) as err:
        discover(tmp_path / "empty")
    assert str(tmp_path / "empty") in str(err.value) and ".png" in str(err.value) and ".tif" in str(err.value)
    with pytest.raises(DataError, match="unlabelled image folder not found"):
        write_image(tmp_path / "ok/a.png")
        discover(tmp_path / "ok", unlabelled_dirs=[tmp_path / "missing"])


def test_explicit_folders_missing_or_unmatched_give_one_line_naming_both(tmp_path: Path) -> None:
    write_photo(tmp_path / "imgs/a.tif")
    write_mask01(tmp_path / "labels/zz.png")
    cases = [
        (Path("nope"), Path("labels"), "images folder not found"),
        (Path("imgs"), Path("nolabels"), "masks folder not found"),
        (Path("imgs"), Path("labels"), "no image has a mask of the same name"),
    ]
    for images, masks, message in cases:
        with pytest.raises(DataError, match=message) as err:
            discover(tmp_path, images_dir=images, masks_dir=masks)
        text = str(err.value)
        assert "\n" not in text
        assert str(tmp_path / images) in text and str(tmp_path / masks) in text
        assert "data.images_dir" in text
    with pytest.raises(DataError, match="together"):
        discover(tmp_path, images_dir=Path("imgs"))
    with pytest.raises(DataError, match="the layout is 'busi'"):
        discover(tmp_path, layout="busi", images_dir=Path("imgs"), masks_dir=Path("labels"))


def test_config_needs_images_dir_and_masks_dir_together() -> None:
    from teachseg.config import build_config
    from teachseg.errors import ConfigError

    cfg = build_config({"data": {"images_dir": "imgs", "masks_dir": "labels"}})
    assert (cfg.data.images_dir, cfg.data.masks_dir) == (Path("imgs"), Path("labels"))
    with pytest.raises(ConfigError, match="together"):
        build_config({"data": {"images_dir": "imgs"}})
    with pytest.raises(ConfigError, match="layout"):
        build_config({"data": {"images_dir": "i", "masks_dir": "m", "layout": "busi"}})
