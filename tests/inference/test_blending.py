import numpy as np

from teachseg.inference.blending import BandBlender, RawRaster
from teachseg.inference.writers import build_pyramid
from teachseg.wsi.tiling import gaussian_weight, tile_grid


def _blend(tmp_path, truth, tile, overlap, keep=lambda t: True):
    h, w = truth.shape
    raster = RawRaster(tmp_path / "r.u8", h, w)
    b = BandBlender(raster, tile, gaussian_weight(tile), threshold=0.5)
    padded = np.zeros((max(h, tile), max(w, tile)), np.float32)
    padded[:h, :w] = truth
    for t in tile_grid(h, w, tile, overlap):
        if keep(t):
            b.add(t.y, t.x, padded[t.y : t.y + tile, t.x : t.x + tile])
    b.finish()
    return raster, b


def test_blender_reproduces_a_consistent_map(tmp_path):
    rng = np.random.default_rng(0)
    truth = rng.random((300, 410)).astype(np.float32)
    raster, b = _blend(tmp_path, truth, 64, 0.25)
    got = raster.read_rows(0, 300)
    want = np.rint(truth * 255).astype(np.int16)
    assert np.abs(got.astype(np.int16) - want).max() <= 1  # float32 rounding at .5
    assert b.positive_pixels == int((got >= 128).sum())


def test_blender_small_image_and_skipped_rows(tmp_path):
    truth = np.full((40, 50), 0.8, np.float32)
    raster, _ = _blend(tmp_path, truth, 64, 0.25)
    assert (raster.read_rows(0, 40) == 204).all()

    truth = np.full((500, 200), 0.6, np.float32)
    raster, _ = _blend(tmp_path, truth, 64, 0.0, keep=lambda t: t.y < 64 or t.y >= 384)
    got = raster.read_rows(0, 500)
    assert (got[:64] == 153).all() and (got[64:384] == 0).all() and (got[384:] == 153).all()


def test_pyramid_halves_until_small(tmp_path):
    base = RawRaster(tmp_path / "b.u8", 1000, 600)
    base.write_rows(0, np.full((1000, 600), 100, np.uint8))
    levels = build_pyramid(base, tmp_path, min_side=128)
    assert [(lv.height, lv.width) for lv in levels] == [(1000, 600), (500, 300), (250, 150), (125, 75)]
    assert (levels[-1].read_rows(0, 125) == 100).all()
