"""Reading masks: 0/1 and 0/255, RGB, palette, 16-bit, JPEG, several files OR-merged, size checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from teachseg.data.masks import read_mask
from teachseg.errors import DataError

H, W = 16, 20


def _square() -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[4:10, 5:12] = True
    return m


def _save_mask(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    Image.fromarray(array, mode).save(path) if mode else Image.fromarray(array).save(path)
    return path


@pytest.mark.parametrize("scale", [1, 255])
def test_mask_zero_one_and_zero_255(tmp_path: Path, scale: int) -> None:
    path = _save_mask(tmp_path / "m.png", _square().astype(np.uint8) * scale)
    np.testing.assert_array_equal(read_mask([path]), _square())


def test_rgb_mask_any_channel_is_foreground(tmp_path: Path) -> None:
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[4:10, 5:8, 0] = 255  # red
    rgb[4:10, 8:12, 2] = 3  # faint blue: ITU greyscale conversion would round it to 0
    path = _save_mask(tmp_path / "m.png", rgb)
    np.testing.assert_array_equal(read_mask([path]), _square())


def test_palette_mask_uses_index(tmp_path: Path) -> None:
    img = Image.new("P", (W, H))
    img.putdata((_square().astype(np.uint8) * 2).ravel().tolist())
    # index 0 is drawn white and index 2 black: colours must not matter, only the index
    img.putpalette([255, 255, 255, 9, 9, 9, 0, 0, 0] + [0] * (256 * 3 - 9))
    img.save(tmp_path / "m.png")
    with Image.open(tmp_path / "m.png") as check:
        assert check.mode == "P"
    np.testing.assert_array_equal(read_mask([tmp_path / "m.png"]), _square())


def test_instance_map_16bit(tmp_path: Path) -> None:
    labels = np.zeros((H, W), np.uint16)
    labels[4:10, 5:8] = 1
    labels[4:10, 8:12] = 300
    tifffile.imwrite(tmp_path / "m.tif", labels)
    np.testing.assert_array_equal(read_mask([tmp_path / "m.tif"]), _square())


def test_jpeg_mask_ignores_compression_ringing(tmp_path: Path) -> None:
    Image.fromarray(_square().astype(np.uint8) * 255).save(tmp_path / "m.jpg", quality=75)
    mask = read_mask([tmp_path / "m.jpg"])
    assert (mask != _square()).sum() <= 2


def test_masks_are_or_merged(tmp_path: Path) -> None:
    a = np.zeros((H, W), np.uint8)
    b = np.zeros((H, W), np.uint8)
    a[0:3, 0:3] = 255
    b[10:14, 10:14] = 255
    paths = [_save_mask(tmp_path / "a.png", a), _save_mask(tmp_path / "b.png", b)]
    merged = read_mask(paths, expected_shape=(H, W))
    assert merged.sum() == 9 + 16
    assert merged[1, 1] and merged[12, 12]


def test_mask_size_mismatch_between_files(tmp_path: Path) -> None:
    a = _save_mask(tmp_path / "a_mask.png", np.zeros((H, W), np.uint8))
    b = _save_mask(tmp_path / "a_mask_1.png", np.zeros((H + 1, W), np.uint8))
    with pytest.raises(DataError) as err:
        read_mask([a, b])
    text = str(err.value)
    assert "a_mask_1.png" in text and "a_mask.png" in text and "16x20" in text and "17x20" in text


def test_mask_size_mismatch_with_image(tmp_path: Path) -> None:
    a = _save_mask(tmp_path / "a.png", np.zeros((H, W), np.uint8))
    with pytest.raises(DataError, match=r"a\.png.*16x20.*does not match.*8x8"):
        read_mask([a], expected_shape=(8, 8))
