"""Tile grids and blending weights: plain functions, testable without a model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, order=True)
class Tile:
    """A tile's top-left corner (row first, so sorting gives row-major order) in level pixels."""

    y: int
    x: int


def axis_starts(length: int, tile: int, overlap: float) -> list[int]:
    """Start offsets along one axis so that tiles of ``tile`` pixels cover ``length`` with the given overlap.

    The last tile is aligned with the end (no padding needed unless ``length < tile``).

    >>> axis_starts(10, 4, 0.5)
    [0, 2, 4, 6]
    """
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    if length <= tile:
        return [0]
    stride = max(1, int(round(tile * (1.0 - overlap))))
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def tile_grid(height: int, width: int, tile: int, overlap: float) -> list[Tile]:
    """All tiles covering a ``height`` x ``width`` image, row-major."""
    return [Tile(y, x) for y in axis_starts(height, tile, overlap) for x in axis_starts(width, tile, overlap)]


def gaussian_weight(tile: int, sigma_scale: float = 0.125, floor: float = 1e-3) -> np.ndarray:
    """A (tile, tile) float32 Gaussian weight map, 1 at the centre, at least ``floor`` at the border.

    Tile centres are trusted more than tile borders, so overlapping predictions blend without seams
    (nnU-Net's choice of sigma = tile / 8).
    """
    sigma = max(tile * sigma_scale, 1e-6)
    c = (tile - 1) / 2.0
    r = np.exp(-0.5 * ((np.arange(tile, dtype=np.float64) - c) / sigma) ** 2)
    w = np.outer(r, r)
    w /= w.max()
    return np.maximum(w, floor).astype(np.float32)


def tiles_touching(
    tiles: list[Tile], mask: np.ndarray, scale: float, tile: int, min_fraction: float = 0.0
) -> list[Tile]:
    """Keep the tiles whose footprint on a low-resolution ``mask`` holds tissue.

    Args:
        tiles: tiles in level pixels.
        mask: boolean mask (e.g. tissue on a thumbnail).
        scale: level pixels per mask pixel.
        tile: tile size in level pixels.
        min_fraction: keep a tile when the share of mask pixels in it exceeds this (0: any pixel).
    """
    if mask.size == 0:
        return []
    integral = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), dtype=np.int64)
    integral[1:, 1:] = np.cumsum(np.cumsum(mask.astype(np.int64), axis=0), axis=1)
    mh, mw = mask.shape
    kept = []
    for t in tiles:
        y0 = min(int(np.floor(t.y / scale)), mh - 1)
        x0 = min(int(np.floor(t.x / scale)), mw - 1)
        y1 = min(max(int(np.ceil((t.y + tile) / scale)), y0 + 1), mh)
        x1 = min(max(int(np.ceil((t.x + tile) / scale)), x0 + 1), mw)
        count = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
        area = (y1 - y0) * (x1 - x0)
        if count > 0 and count / area > min_fraction:
            kept.append(t)
    return kept
