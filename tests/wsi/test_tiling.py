import numpy as np
import pytest

from teachseg.wsi.tiling import Tile, axis_starts, gaussian_weight, tile_grid, tiles_touching


@pytest.mark.parametrize(
    "length,tile,overlap", [(10, 4, 0.5), (1000, 256, 0.25), (256, 256, 0.25), (100, 256, 0.0)]
)
def test_axis_starts_cover_the_axis(length, tile, overlap):
    starts = axis_starts(length, tile, overlap)
    covered = np.zeros(max(length, tile), bool)
    for s in starts:
        covered[s : s + tile] = True
    assert covered[:length].all()
    assert starts == sorted(set(starts)) and starts[0] == 0
    assert all(s + tile <= max(length, tile) for s in starts)


def test_axis_starts_rejects_bad_overlap():
    with pytest.raises(ValueError):
        axis_starts(100, 10, 1.0)


def test_tile_grid_is_row_major():
    grid = tile_grid(300, 500, 128, 0.25)
    assert grid == sorted(grid)
    assert grid[0] == Tile(0, 0) and grid[-1] == Tile(300 - 128, 500 - 128)


def test_gaussian_weight():
    w = gaussian_weight(64)
    assert w.shape == (64, 64) and w.dtype == np.float32
    assert w.max() == pytest.approx(1.0, abs=1e-3) and w.min() >= 1e-3
    np.testing.assert_allclose(w, w.T)
    np.testing.assert_allclose(w, w[::-1, ::-1])
    # trusted most at the centre, less and less towards every border (uniform weights would not blend seams)
    # (the floor flattens the outermost pixels)
    row = w[31]
    assert np.all(np.diff(row[:32]) >= 0) and np.all(np.diff(row[32:]) <= 0)
    assert np.all(np.diff(row[8:32]) > 0) and w[31, 31] == w.max()
    assert w[0, 0] < 0.01 and row[0] < 0.01 * row[31] and row[16] < 0.5 * row[31]


def test_tiles_touching_keeps_only_tissue_tiles():
    mask = np.zeros((10, 10), bool)
    mask[2, 7] = True  # one tissue pixel; mask pixel = 10 level pixels
    grid = tile_grid(100, 100, 20, 0.0)
    kept = tiles_touching(grid, mask, scale=10.0, tile=20)
    assert kept == [Tile(20, 60)]
    assert tiles_touching(grid, np.zeros((10, 10), bool), 10.0, 20) == []
    assert tiles_touching(grid, mask, 10.0, 20, min_fraction=0.5) == []
