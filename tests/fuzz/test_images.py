"""Broken images and masks: PNG, JPEG, TIFF, BMP, ``.mat`` v5 and v7.3, mutated and mislabelled."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from teachseg.data.imageio import image_shape, read_image
from teachseg.data.masks import read_mask
from teachseg.errors import DataError
from tests.fuzz.conftest import check, mutations, png_with_size


def _pil(arr: np.ndarray, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **kw)
    return buf.getvalue()


def _tiff(arr: np.ndarray, **kw: object) -> bytes:
    import tifffile

    buf = io.BytesIO()
    tifffile.imwrite(buf, arr, **kw)
    return buf.getvalue()


def _mat5(arr: np.ndarray) -> bytes:
    import scipy.io

    buf = io.BytesIO()
    scipy.io.savemat(buf, {"mask": arr})
    return buf.getvalue()


def _mat73(tmp: Path, arr: np.ndarray) -> bytes:
    import h5py

    path = tmp / "seed73.mat"
    with h5py.File(path, "w", userblock_size=512) as fh:
        fh.create_dataset("mask", data=arr.T, compression="gzip")
    return path.read_bytes()


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, bytes]]:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
    mask = np.zeros((24, 32), np.uint8)
    mask[5:15, 8:20] = 255
    grey16 = (rng.integers(0, 65535, (24, 32))).astype(np.uint16)
    pal = Image.fromarray((mask > 0).astype(np.uint8), mode="L").convert("P")
    buf = io.BytesIO()
    pal.save(buf, format="PNG")
    return {
        "rgb_png": (".png", _pil(rgb, "PNG")),
        "grey16_png": (".png", _pil(grey16, "PNG")),
        "palette_png": (".png", buf.getvalue()),
        "jpeg": (".jpg", _pil(rgb, "JPEG", quality=90)),
        "bmp": (".bmp", _pil(rgb, "BMP")),
        "tiff": (".tif", _tiff(rgb)),
        "tiff_deflate": (".tiff", _tiff(grey16, compression="zlib")),
        "mask_png": (".png", _pil(mask, "PNG")),
        "mat5": (".mat", _mat5(mask)),
        "mat73": (".mat", _mat73(tmp_path_factory.mktemp("mat"), (mask > 0).astype(np.uint8))),
    }


def _readers(suffix: str) -> list:
    if suffix == ".mat":
        return [lambda p: read_mask([p])]
    return [read_image, lambda p: read_mask([p]), image_shape]


@pytest.mark.parametrize(
    "name",
    [
        "rgb_png",
        "grey16_png",
        "palette_png",
        "jpeg",
        "bmp",
        "tiff",
        "tiff_deflate",
        "mask_png",
        "mat5",
        "mat73",
    ],
)
def test_mutated_files(name: str, seeds, tmp_path: Path, fuzz_flips: int) -> None:
    suffix, data = seeds[name]
    for i, (label, blob) in enumerate(mutations(data, seed=zlib.crc32(name.encode()), n_flips=fuzz_flips)):
        path = tmp_path / f"{name}_{label}_{i}{suffix}"
        path.write_bytes(blob)
        for read in _readers(suffix):
            check(read, path)


def test_wrong_extensions(seeds, tmp_path: Path) -> None:
    for name, (_, data) in seeds.items():
        for suffix in (".png", ".jpg", ".tif", ".bmp", ".mat"):
            path = tmp_path / f"{name}_as{suffix}"
            path.write_bytes(data)
            for read in _readers(suffix):
                check(read, path)


# ------------------------------------------------------------------------------ huge declared sizes


def _huge_tiff(tmp: Path) -> Path:
    import tifffile

    path = tmp / "huge.tif"
    tifffile.imwrite(path, np.zeros((8, 8), np.uint8))
    with tifffile.TiffFile(path, mode="r+b") as tif:
        tif.pages.first.tags["ImageWidth"].overwrite(100_000)
        tif.pages.first.tags["ImageLength"].overwrite(100_000)
    return path


def _huge_jpeg(tmp: Path) -> Path:
    data = bytearray(_pil(np.zeros((8, 8, 3), np.uint8), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = (65_000).to_bytes(2, "big") * 2
    path = tmp / "huge.jpg"
    path.write_bytes(bytes(data))
    return path


def _huge_bmp(tmp: Path) -> Path:
    data = bytearray(_pil(np.zeros((8, 8, 3), np.uint8), "BMP"))
    data[18:26] = (100_000).to_bytes(4, "little") * 2
    path = tmp / "huge.bmp"
    path.write_bytes(bytes(data))
    return path


def _huge_mat73(tmp: Path) -> Path:
    import h5py

    path = tmp / "huge.mat"
    with h5py.File(path, "w") as fh:
        fh.create_dataset(
            "mask", shape=(100_000, 100_000), dtype="u1", chunks=(1024, 1024), compression="gzip"
        )
    return path


@pytest.mark.parametrize("make", ["png", "tiff", "jpeg", "bmp", "mat73"])
def test_huge_declared_size_is_refused_before_decoding(make: str, tmp_path: Path) -> None:
    if make == "png":
        path = tmp_path / "huge.png"
        path.write_bytes(png_with_size(100_000, 100_000))
    else:
        path = {"tiff": _huge_tiff, "jpeg": _huge_jpeg, "bmp": _huge_bmp, "mat73": _huge_mat73}[make](
            tmp_path
        )
    readers = _readers(path.suffix)[:2]
    for read in readers:
        err = check(read, path, timeout=10)
        assert isinstance(err, DataError) and "pixels" in str(err) and "TEACHSEG_MAX_IMAGE_PIXELS" in str(err)


def test_pixel_limit_is_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(_pil(np.zeros((20, 30, 3), np.uint8), "PNG"))
    assert read_image(path).shape == (20, 30, 3)
    monkeypatch.setenv("TEACHSEG_MAX_IMAGE_PIXELS", "500")
    err = check(read_image, path)
    assert isinstance(err, DataError) and "600 pixels" in str(err)
    monkeypatch.setenv("TEACHSEG_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(DataError, match="TEACHSEG_MAX_IMAGE_PIXELS='lots'"):
        read_image(path)


def test_corrupt_v73_chunk_is_a_data_error(tmp_path: Path) -> None:
    """Defect found by the fuzzer: a v7.3 file whose variable listing reads but whose data chunk is corrupt
    raised h5py's OSError (a traceback) instead of a DataError."""
    import h5py

    path = tmp_path / "m.mat"
    with h5py.File(path, "w") as fh:
        fh.create_dataset("mask", data=np.ones((64, 64), np.uint8), compression="gzip", chunks=(64, 64))
    data = bytearray(path.read_bytes())
    with h5py.File(path, "r") as fh:
        offset = fh["mask"].id.get_chunk_info(0).byte_offset
    data[offset + 2 : offset + 10] = b"\xff" * 8
    path.write_bytes(bytes(data))
    err = check(lambda p: read_mask([p]), path)
    assert isinstance(err, DataError) and "cannot read MATLAB file" in str(err)


def test_seeds_themselves_load(seeds, tmp_path: Path) -> None:
    for name, (suffix, data) in seeds.items():
        path = tmp_path / f"{name}{suffix}"
        path.write_bytes(data)
        for read in _readers(suffix):
            assert check(read, path) is None, name


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rgb_png", "jpeg", "tiff_deflate", "bmp", "mat5", "mat73"])
def test_mutated_files_many(name: str, seeds, tmp_path: Path) -> None:
    test_mutated_files(name, seeds, tmp_path, fuzz_flips=300)


def test_data_check_on_broken_files_is_never_unexpected(seeds, tmp_path: Path, capsys) -> None:
    """End to end: ``data check`` over a folder of broken images and masks reports them, without a crash."""
    from teachseg.cli import run

    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for name, (suffix, data) in seeds.items():
        for label, blob in list(mutations(data, 11, 3))[:6]:
            stem = f"{name}_{label}"
            good = _pil(np.zeros((24, 32, 3), np.uint8), "PNG")
            if suffix == ".mat":
                (root / "images" / f"{stem}.png").write_bytes(good)
            else:
                (root / "images" / f"{stem}{suffix}").write_bytes(blob)
            (root / "masks" / f"{stem}_mask{suffix}").write_bytes(blob)
    capsys.readouterr()
    code = run(["data", "check", str(root)])
    captured = capsys.readouterr()
    assert code in (0, 1), captured.err
    assert "unexpected" not in captured.err and "Traceback" not in captured.err + captured.out
    assert "problem:" in captured.out
