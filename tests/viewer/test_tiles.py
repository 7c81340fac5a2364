"""Deep Zoom tiles: the slide's through teachseg's reader, the probability map's on the slide's grid."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from teachseg.viewer.tiles import COLOUR_STOPS, Geometry, ProbabilityTiles, SlideTiles, colour_lut

from .conftest import SIZE, SQUARE


def test_best_level_follows_openslides_rule(predictions: Path):
    import openslide

    slide = openslide.OpenSlide(str(predictions.parent / "square.tif"))
    ours = Geometry(list(slide.level_dimensions), list(slide.level_downsamples))
    for d in [0.5, 1, 1.5, 2, 2.01, 3.99, 4, 7, 8, 9, 100]:
        assert ours.get_best_level_for_downsample(d) == slide.get_best_level_for_downsample(d), d


def test_slide_tiles_equal_openslides_own_deep_zoom(predictions: Path):
    """Read through teachseg's reader, the Deep Zoom grid and pixels are OpenSlide's own generator's."""
    import openslide
    from openslide.deepzoom import DeepZoomGenerator

    path = predictions.parent / "square.tif"
    ours = SlideTiles(path)
    theirs = DeepZoomGenerator(openslide.OpenSlide(str(path)), tile_size=254, overlap=1)
    assert ours.dzi() == theirs.get_dzi("jpeg")
    for level in range(theirs.level_count):
        cols, rows = theirs.level_tiles[level]
        for address in {(0, 0), (cols - 1, rows - 1), (cols // 2, rows // 2)}:
            a = np.asarray(ours.dz.get_tile(level, address).convert("RGB")).astype(int)
            b = np.asarray(theirs.get_tile(level, address).convert("RGB")).astype(int)
            assert a.shape == b.shape and np.abs(a - b).max() <= 1, (level, address)
    jpeg = Image.open(io.BytesIO(ours.tile(theirs.level_count - 1, 1, 1)))
    assert jpeg.format == "JPEG" and jpeg.size == (256, 256)
    with pytest.raises(ValueError):
        ours.tile(theirs.level_count, 0, 0)


def _centres(level: int, levels: int, col: int, row: int, shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """Level-0 coordinates of the pixel centres of Deep Zoom tile (col, row), and level-0 px per tile px."""
    scale = 2 ** (levels - 1 - level)
    zx, zy = col * 254 - (1 if col else 0), row * 254 - (1 if row else 0)
    return (zx + np.arange(shape[1]) + 0.5) * scale, (zy + np.arange(shape[0]) + 0.5) * scale, scale


def test_probability_tiles_lie_on_the_slides_grid(predictions: Path):
    """At each of the finest six levels, every tile pixel whose centre is on the square is tumour and every
    other is not: the map (half the slide's size) is scaled and placed exactly. Only centres within a
    quarter of a tile pixel of the square's edge may go either way."""
    tiles = ProbabilityTiles(predictions / "square_prob.tif", *SIZE)
    slide = SlideTiles(predictions.parent / "square.tif")
    assert tiles.dzi() == slide.dzi().replace('Format="jpeg"', 'Format="png"')
    x0, y0, x1, y1 = SQUARE
    levels = tiles.dz.level_count
    checked = 0
    for level in range(levels - 6, levels):
        cols, rows = tiles.dz.level_tiles[level]
        for col in range(cols):
            for row in range(rows):
                p = tiles.probabilities(level, col, row)
                assert p.shape[::-1] == tiles.dz.get_tile_dimensions(level, (col, row))
                xs, ys, scale = _centres(level, levels, col, row, p.shape)
                inside = ((ys >= y0) & (ys < y1))[:, None] & ((xs >= x0) & (xs < x1))[None, :]
                near_x = np.minimum(np.abs(xs - x0), np.abs(xs - x1)) <= scale / 4
                near_y = np.minimum(np.abs(ys - y0), np.abs(ys - y1)) <= scale / 4
                sure = ~(near_y[:, None] | near_x[None, :])
                assert np.array_equal((p >= 128)[sure], inside[sure]), (level, col, row)
                checked += int(inside[sure].sum())
    assert checked > 512 * 384  # the square was seen, at full resolution and above


def test_probability_tiles_are_colour_mapped_with_transparency(predictions: Path):
    tiles = ProbabilityTiles(predictions / "square_prob.tif", *SIZE)
    level = tiles.dz.level_count - 1
    rgba = np.asarray(Image.open(io.BytesIO(tiles.tile(level, 3, 2))))  # level-0 x 761-1017, y 507-763
    assert rgba.shape == (256, 256, 4) and (rgba[10:, :] == [255, 235, 0, 255]).all()
    rgba = np.asarray(Image.open(io.BytesIO(tiles.tile(level, 0, 0))))  # glass
    assert (rgba[..., 3] == 0).all()
    assert tiles.value(700, 600) == 1.0 and tiles.value(100, 100) == 0.0 and tiles.value(-1, 5) is None


def test_colour_lut_alpha_is_the_probability():
    lut = colour_lut()
    assert lut.shape == (256, 4) and (lut[:, 3] == np.arange(256)).all()
    assert tuple(lut[0, :3]) == COLOUR_STOPS[0][1] and tuple(lut[255, :3]) == COLOUR_STOPS[-1][1]


def test_a_real_slide_tiles_as_openslide_does():
    """CMU-1-Small-Region.svs (Aperio JPEG), where available: the same grid and pixels as OpenSlide's own."""
    import openslide
    from openslide.deepzoom import DeepZoomGenerator

    from tests.inference.conftest import CMU_SMALL

    if not CMU_SMALL.is_file():
        pytest.skip(f"real slide not found: {CMU_SMALL}")
    ours = SlideTiles(CMU_SMALL)
    theirs = DeepZoomGenerator(openslide.OpenSlide(str(CMU_SMALL)), tile_size=254, overlap=1)
    assert ours.dzi() == theirs.get_dzi("jpeg")
    top = theirs.level_count - 1
    for level, address in ((top, (3, 2)), (top - 2, (0, 0)), (top - 4, (0, 0))):
        a = np.asarray(ours.dz.get_tile(level, address).convert("RGB")).astype(int)
        b = np.asarray(theirs.get_tile(level, address).convert("RGB")).astype(int)
        assert a.shape == b.shape and np.abs(a - b).max() <= 1, (level, address)
