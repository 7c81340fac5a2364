"""Reading images and masks: formats, bit depths, mask encodings, .mat files and broken files."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import tifffile
from PIL import Image

from teachseg.data.imageio import image_shape, read_image, read_mask
from teachseg.errors import DataError

H, W = 16, 20


def _rgb(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def _square() -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[4:10, 5:12] = True
    return m


# ----------------------------------------------------------------------------------------------- images


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


# ------------------------------------------------------------------------------------------------ masks


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


# ------------------------------------------------------------------------------------------------- .mat


def _mat73(path: Path, variables: dict[str, np.ndarray]) -> Path:
    """An HDF5 file laid out like MATLAB -v7.3: datasets stored transposed, plus MATLAB's #refs# group."""
    with h5py.File(path, "w", userblock_size=512) as fh:
        for name, value in variables.items():
            ds = fh.create_dataset(name, data=np.asarray(value).T)
            ds.attrs["MATLAB_class"] = np.bytes_("double")
        fh.create_group("#refs#").create_dataset("a", data=np.zeros((50, 50)))
    with open(path, "r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file".ljust(128, b" "))
    return path


def test_mat_v5_auto_picks_largest_2d_array(tmp_path: Path) -> None:
    path = tmp_path / "m.mat"
    small = np.ones((3, 3))
    scipy.io.savemat(
        path, {"inst_map": _square().astype(np.uint8) * 4, "tiny": small, "vec": np.arange(100.0)}
    )
    np.testing.assert_array_equal(read_mask([path]), _square())


def test_mat_v5_named_variable_and_missing_variable(tmp_path: Path) -> None:
    path = tmp_path / "m.mat"
    other = np.zeros((30, 30))
    scipy.io.savemat(path, {"mask": _square().astype(float), "big": other})
    np.testing.assert_array_equal(read_mask([path], mat_variable="mask"), _square())
    assert not read_mask([path]).any()  # auto picks the larger array
    with pytest.raises(DataError) as err:
        read_mask([path], mat_variable="nope")
    assert "m.mat" in str(err.value) and "big" in str(err.value) and "mask" in str(err.value)


def test_mat_v5_singleton_dims_are_squeezed(tmp_path: Path) -> None:
    path = tmp_path / "m.mat"
    scipy.io.savemat(path, {"mask": _square()[None, :, :, None].astype(np.uint8)})
    np.testing.assert_array_equal(read_mask([path]), _square())


def test_mat_without_2d_array_errors_with_listing(tmp_path: Path) -> None:
    path = tmp_path / "m.mat"
    scipy.io.savemat(path, {"vol": np.zeros((4, 5, 6)), "name": "abc", "v": np.arange(3.0)})
    with pytest.raises(DataError) as err:
        read_mask([path])
    text = str(err.value)
    assert "m.mat" in text and "vol 4x5x6" in text and "mat_variable" in text


def test_mat_v73_is_transposed_back(tmp_path: Path) -> None:
    mask = _square()
    path = _mat73(tmp_path / "m.mat", {"mask": mask.astype(float), "small": np.ones((2, 2))})
    assert h5py.is_hdf5(path)
    out = read_mask([path], expected_shape=(H, W))
    assert out.shape == (H, W)
    np.testing.assert_array_equal(out, mask)
    np.testing.assert_array_equal(read_mask([path], mat_variable="mask"), mask)
    with pytest.raises(DataError, match="mask 16x20"):
        read_mask([path], mat_variable="missing")


def test_mat_v73_without_2d_array(tmp_path: Path) -> None:
    path = _mat73(tmp_path / "m.mat", {"vol": np.zeros((2, 3, 4))})
    with pytest.raises(DataError, match=r"m\.mat.*no 2-D numeric array.*vol 2x3x4"):
        read_mask([path])


def test_corrupt_mat(tmp_path: Path) -> None:
    path = tmp_path / "m.mat"
    path.write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(DataError, match=r"m\.mat"):
        read_mask([path])
