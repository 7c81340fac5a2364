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


def _reference_blend(h: int, w: int, tile: int, tiles, value_of) -> np.ndarray:
    """The weighted mean of every tile covering each pixel, on the whole canvas at once (no bands)."""
    weight = gaussian_weight(tile).astype(np.float64)
    acc = np.zeros((max(h, tile) + tile, max(w, tile) + tile))
    wsum = np.zeros_like(acc)
    for t in tiles:
        acc[t.y : t.y + tile, t.x : t.x + tile] += weight * value_of(t)
        wsum[t.y : t.y + tile, t.x : t.x + tile] += weight
    return acc[:h, :w] / wsum[:h, :w]


def test_tiles_that_disagree_blend_to_their_weighted_mean(tmp_path):
    """Each tile predicts its own constant, so every overlap is a disagreement: the streamed bands must give
    the weighted mean of the tiles covering each pixel, as one whole-canvas sum does."""
    h, w, tile = 230, 300, 64
    tiles = tile_grid(h, w, tile, 0.5)
    value = {t: v for t, v in zip(tiles, np.random.default_rng(3).random(len(tiles)), strict=True)}
    raster = RawRaster(tmp_path / "r.u8", h, w)
    b = BandBlender(raster, tile, gaussian_weight(tile), threshold=0.5)
    for t in tiles:
        b.add(t.y, t.x, np.full((tile, tile), value[t], np.float32))
    b.finish()
    want = np.rint(_reference_blend(h, w, tile, tiles, value.__getitem__) * 255)
    got = raster.read_rows(0, h).astype(np.int16)
    assert np.abs(got - want).max() <= 1
    assert len(np.unique(got)) > 2 * len(tiles)  # the overlaps really mix the tiles' values


def test_tile_borders_are_down_weighted(tmp_path):
    """Two tiles side by side, overlapping on 16 columns (48-63), predict 0.2 and 0.9. Across the overlap the
    blend rises from near the left tile's value (its interior) to near the right tile's, crossing their
    midpoint half way: each tile is trusted less towards its border. Equal weights would give 0.55 all along."""
    tile = 64
    raster = RawRaster(tmp_path / "r.u8", 64, 112)
    b = BandBlender(raster, tile, gaussian_weight(tile), threshold=0.5)
    tiles = tile_grid(64, 112, tile, 0.25)
    assert [(t.y, t.x) for t in tiles] == [(0, 0), (0, 48)]
    for t, v in zip(tiles, (0.2, 0.9), strict=True):
        b.add(t.y, t.x, np.full((tile, tile), v, np.float32))
    b.finish()
    row = raster.read_rows(32, 33)[0].astype(int) / 255
    assert np.allclose(row[:46], 0.2, atol=0.01) and np.allclose(row[66:], 0.9, atol=0.01)
    overlap = row[48:64]
    assert np.all(np.diff(overlap) >= 0)  # non-decreasing (8-bit steps flatten its ends)
    assert overlap[0] < 0.25 and overlap[-1] > 0.85  # each tile's border pixel is nearly the other's value
    assert overlap[7] < 0.55 < overlap[8]  # the midpoint half way, at the centre of the overlap


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
