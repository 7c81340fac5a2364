"""The scale the network sees tiles at: the manifests' um/px times the tile side over ``data.image_size``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from teachseg.data.tile_scale import check_data_mpp, tiles_mpp
from teachseg.errors import ConfigError, DataError
from teachseg.io import write_json, write_png


def _manifest(root: Path, slide: str, mpp: float, size: int | None, n_tiles: int = 1) -> None:
    tiles = [{"name": f"{slide}_x{64 * i}_y0", "x": 64 * i, "y": 0, "labelled": True} for i in range(n_tiles)]
    manifest = {"slide": f"/slides/{slide}.svs", "mpp": mpp, "tiles": tiles}
    if size is not None:
        manifest["size"] = size
    write_json(root / f"{slide}_tiles.json", manifest)


def test_tiles_resized_to_image_size_are_seen_at_a_coarser_scale(tmp_path: Path) -> None:
    _manifest(tmp_path, "s1", 0.5, 512)
    assert tiles_mpp(tmp_path, 512) == 0.5
    assert tiles_mpp(tmp_path, 256) == 1.0  # 512 px of 0.5 um/px squeezed into 256 px
    assert tiles_mpp(tmp_path, 1024) == 0.25
    # another size at another resolution, seen at the same scale: one scale to record
    _manifest(tmp_path, "s2", 1.0, 256)
    assert tiles_mpp(tmp_path, 256) == 1.0


def test_scales_within_two_percent_are_averaged_over_the_tiles(tmp_path: Path) -> None:
    _manifest(tmp_path, "s1", 0.2525, 256, n_tiles=1)
    _manifest(tmp_path, "s2", 0.2529, 256, n_tiles=3)
    assert tiles_mpp(tmp_path, 256) == pytest.approx(0.2528)


def test_tiles_of_two_scales_are_refused_naming_both_manifests(tmp_path: Path) -> None:
    _manifest(tmp_path, "small", 0.5, 256)
    _manifest(tmp_path, "big", 0.5, 512)
    with pytest.raises(DataError) as err:
        tiles_mpp(tmp_path, 256)
    text = str(err.value)
    assert "small_tiles.json has 256 px tiles at 0.5 um/px, seen at 0.5 um/px" in text
    assert "big_tiles.json has 512 px tiles at 0.5 um/px, seen at 1 um/px" in text
    assert str(tmp_path) in text and "--mpp X --size N" in text


def test_a_manifest_without_size_takes_its_first_tile_side(tmp_path: Path) -> None:
    _manifest(tmp_path, "s1", 0.5, None)
    assert tiles_mpp(tmp_path, 64) is None  # no tile on disk: no side, no scale
    write_png(tmp_path / "unlabelled" / "s1_x0_y0.png", np.zeros((128, 128, 3), np.uint8))
    assert tiles_mpp(tmp_path, 64) == 1.0
    write_png(tmp_path / "images" / "s1_x0_y0.png", np.zeros((128, 96, 3), np.uint8))
    assert tiles_mpp(tmp_path, 64) is None  # not square: resized, it has two scales


def test_data_mpp_copied_from_the_tiles_is_refused_with_the_scale_to_use(tmp_path: Path) -> None:
    _manifest(tmp_path, "s1", 0.5, 512)
    with pytest.raises(ConfigError, match=r"data.mpp = 0.5 um/px, but .* at 1 um/px.*set it to 1"):
        check_data_mpp(tmp_path, 256, 0.5)
    check_data_mpp(tmp_path, 256, 1.0)
    check_data_mpp(tmp_path, 512, 0.5)
    check_data_mpp(tmp_path / "no_manifests", 256, 0.5)
    # manifests that disagree: data.mpp is the user's choice of one scale
    _manifest(tmp_path, "s2", 0.5, 256)
    check_data_mpp(tmp_path, 256, 0.5)
