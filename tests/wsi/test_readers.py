import numpy as np
import pytest

from teachseg.data.synth_slide import write_pyramid_rgb
from teachseg.errors import DataError
from teachseg.wsi.readers import ArrayReader, TiffSlideReader, choose_level, open_slide


def test_pyramidal_tiff_through_openslide(slide_path):
    with open_slide(slide_path) as r:
        assert r.backend == "openslide"
        assert r.dimensions == (1024, 1024) and len(r.levels) >= 2
        assert r.mpp == pytest.approx(0.5)
        assert r.level_mpp(1) == pytest.approx(1.0)
        region = r.read(0, 100, 200, 64, 32)
        assert region.shape == (32, 64, 3) and region.dtype == np.uint8
        thumb, ds = r.thumbnail(256)
        assert max(thumb.shape[:2]) <= 256 and ds == pytest.approx(1024 / thumb.shape[1])


def test_tiffslide_reader_matches_openslide(slide_path):
    a = open_slide(slide_path).read(1, 10, 20, 50, 40).astype(int)
    b = TiffSlideReader(slide_path).read(1, 10, 20, 50, 40).astype(int)
    assert np.abs(a - b).max() <= 2  # JPEG decoders may differ by a grey level


def test_read_pads_outside_with_white():
    img = np.zeros((20, 30, 3), np.uint8)
    r = ArrayReader(img)
    out = r.read(0, 25, -5, 10, 10)
    assert (out[5:, :5] == 0).all() and (out[:5] == 255).all() and (out[:, 5:] == 255).all()


def test_choose_level_by_mpp(slide_path):
    r = open_slide(slide_path)
    assert choose_level(r, 0.5) == 0
    assert choose_level(r, 1.1) == 1
    assert choose_level(r, 100.0) == len(r.levels) - 1
    assert choose_level(r, None) == 0
    assert choose_level(r, 1.0, level=0) == 0
    with pytest.raises(DataError, match="level 9"):
        choose_level(r, None, level=9)


def test_slide_without_resolution(tmp_path):
    path = write_pyramid_rgb(
        tmp_path / "nompp.tif", np.full((600, 600, 3), 200, np.uint8), mpp=None, tile=128
    )
    r = open_slide(path)
    assert r.mpp is None and choose_level(r, 0.5) == 0


def test_plain_png(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((50, 70), 128, np.uint8)).save(tmp_path / "a.png")
    r = open_slide(tmp_path / "a.png")
    assert r.backend == "array" and r.dimensions == (70, 50) and not r.is_slide_format
    assert r.read(0, 0, 0, 70, 50).shape == (50, 70, 3)


def test_bad_files(tmp_path, slide_path):
    with pytest.raises(DataError, match="unsupported file type"):
        open_slide(tmp_path / "x.docx").close() if (tmp_path / "x.docx").write_text("x") else None
    (tmp_path / "bad.svs").write_bytes(b"not a slide at all" * 10)
    with pytest.raises(DataError, match="cannot open"):
        open_slide(tmp_path / "bad.svs")
    with pytest.raises(DataError, match="not found"):
        open_slide(tmp_path / "missing.tif")
    data = slide_path.read_bytes()
    (tmp_path / "trunc.tif").write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError):
        r = open_slide(tmp_path / "trunc.tif")
        r.read(0, 0, 0, 1024, 1024)


def test_thumbnail_is_the_block_mean_of_the_level():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (301, 517, 3), dtype=np.uint8)
    thumb, ds = ArrayReader(img).thumbnail(128)
    k = 5  # ceil(517 / 128)
    assert ds == k and thumb.shape == (301 // k, 517 // k, 3)
    crop = img[: 301 // k * k, : 517 // k * k].astype(np.float64)
    mean = crop.reshape(301 // k, k, 517 // k, k, 3).mean(axis=(1, 3))
    # k * k = 25 is odd, so no mean lies half-way between two grey levels: rounding is exact
    assert np.array_equal(thumb, np.rint(mean).astype(np.uint8))
