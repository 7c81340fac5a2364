"""Reading images: formats, bit depths, channel layouts and broken files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from teachseg.data.imageio import image_shape, read_image
from teachseg.errors import DataError

H, W = 16, 20


def _rgb(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif"])
def test_rgb_round_trip_is_exact(tmp_path: Path, suffix: str) -> None:
    rgb = _rgb()
    path = tmp_path / f"a{suffix}"
    if suffix == ".tif":
        tifffile.imwrite(path, rgb)
    else:
        Image.fromarray(rgb).save(path)
    out = read_image(path)
    assert out.dtype == np.uint8 and out.shape == (H, W, 3)
    np.testing.assert_array_equal(out, rgb)
    assert image_shape(path) == (H, W)


def test_jpeg_reads_close_to_source(tmp_path: Path) -> None:
    rgb = np.full((H, W, 3), (200, 120, 160), np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.jpg", quality=95)
    out = read_image(tmp_path / "a.jpg")
    assert out.shape == (H, W, 3)
    assert np.abs(out.astype(int) - rgb).max() <= 4


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_greyscale_becomes_three_equal_channels(tmp_path: Path, suffix: str) -> None:
    grey = _rgb()[..., 0]
    path = tmp_path / f"g{suffix}"
    tifffile.imwrite(path, grey) if suffix == ".tif" else Image.fromarray(grey).save(path)
    out = read_image(path)
    assert out.shape == (H, W, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], grey)


def test_rgba_drops_alpha(tmp_path: Path) -> None:
    rgba = np.concatenate([_rgb(), np.full((H, W, 1), 7, np.uint8)], axis=-1)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), rgba[..., :3])


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_full_range_scaled_by_dtype_range(tmp_path: Path, suffix: str) -> None:
    data = np.linspace(0, 65535, H * W).reshape(H, W).astype(np.uint16)
    path = tmp_path / f"d{suffix}"
    tifffile.imwrite(path, data) if suffix == ".tif" else Image.fromarray(data).save(path)
    out = read_image(path)
    assert out.dtype == np.uint8 and out.shape == (H, W, 3)
    expected = np.round(data / 257.0).astype(np.uint8)
    np.testing.assert_array_equal(out[..., 0], expected)
    # dtype-range scaling keeps absolute brightness: a dim 16-bit image stays dim
    dim = (data // 4).astype(np.uint16)  # max 16383 > 4095: still uses enough of the range
    tifffile.imwrite(tmp_path / "dim.tif", dim)
    assert read_image(tmp_path / "dim.tif").max() == 64


def test_12bit_data_in_16bit_words_is_minmax_stretched(tmp_path: Path) -> None:
    data = np.linspace(100, 4000, H * W).reshape(H, W).astype(np.uint16)
    tifffile.imwrite(tmp_path / "d.tif", data)
    out = read_image(tmp_path / "d.tif")
    assert out.min() == 0 and out.max() == 255
    assert np.all(np.diff(out[..., 0].ravel().astype(int)) >= 0)  # order preserved


def test_16bit_rgb_tiff(tmp_path: Path) -> None:
    data = (_rgb().astype(np.uint16) * 257).astype(np.uint16)
    tifffile.imwrite(tmp_path / "c.tif", data, photometric="rgb")
    np.testing.assert_array_equal(read_image(tmp_path / "c.tif"), _rgb())


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_file_raises_naming_it(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"broken image{suffix}"
    Image.fromarray(_rgb()).resize((200, 160)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError) as err:
        read_image(path)
    assert str(path) in str(err.value) and "Fix:" in str(err.value)


def test_not_an_image_raises(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_text("hello")
    with pytest.raises(DataError, match="a.png"):
        read_image(path)
    with pytest.raises(DataError, match="a.png"):
        image_shape(path)
