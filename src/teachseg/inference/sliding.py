"""Sliding-window inference: split -> predict -> merge, each piece replaceable.

As MONAI separates splitter, merger and inferer: the tile grid comes from :func:`teachseg.wsi.tiling.tile_grid`,
the merger is a :class:`~teachseg.inference.blending.BandBlender` made by a ``blender_factory``, and
:class:`SlidingWindowInferer` runs a predictor over the tiles of a reader's level between them. The tiles of
the next batch are read on a worker thread while the predictor runs on the current one.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from teachseg.inference.blending import BandBlender, RawRaster
from teachseg.wsi.readers import SlideReader
from teachseg.wsi.tiling import Tile, gaussian_weight, tile_grid

#: ``(uint8 (N, H, W, 3) tiles) -> float32 (N, H, W) probabilities``, e.g. a :class:`~.predictor.Predictor`.
TilePredictor = Callable[[np.ndarray], np.ndarray]
#: ``(raster, tile size) -> blender`` writing the merged probabilities into ``raster``.
BlenderFactory = Callable[[RawRaster, int], BandBlender]


def gaussian_blender(threshold: float) -> BlenderFactory:
    """A factory of band blenders with Gaussian tile weights, counting pixels at or above ``threshold``."""

    def make(raster: RawRaster, tile: int) -> BandBlender:
        return BandBlender(raster, tile, gaussian_weight(tile), threshold)

    return make


def _batches(tiles: list[Tile], size: int) -> Iterator[list[Tile]]:
    for i in range(0, len(tiles), size):
        yield tiles[i : i + size]


def stitch(
    reader: SlideReader,
    level: int,
    tiles: list[Tile],
    predictor: TilePredictor,
    blender: BandBlender,
    tile: int,
    batch_size: int = 8,
    on_batch: Callable[[int], None] | None = None,
) -> None:
    """Predict ``tiles`` (row-major) in batches and blend them; the next batch is read while one runs."""

    def load(batch: list[Tile]) -> np.ndarray:
        return np.stack([reader.read(level, t.x, t.y, tile, tile) for t in batch])

    batches = list(_batches(sorted(tiles), batch_size))
    if not batches:
        blender.finish()
        return
    with cf.ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(load, batches[0])
        for i, batch in enumerate(batches):
            images = pending.result()
            if i + 1 < len(batches):
                pending = pool.submit(load, batches[i + 1])
            probs = predictor(images)
            for t, p in zip(batch, probs, strict=True):
                blender.add(t.y, t.x, p)
            if on_batch is not None:
                on_batch(len(batch))
    blender.finish()


@dataclass(frozen=True)
class SlidingWindowInferer:
    """A predictor run over overlapping tiles of a level, merged into an 8-bit raster by a blender.

    Example:
        >>> inferer = SlidingWindowInferer(predictor, gaussian_blender(0.5), tile=256, overlap=0.25)  # doctest: +SKIP
        >>> blender = inferer(reader, 0, inferer.grid(h, w), RawRaster("prob.u8", h, w))  # doctest: +SKIP
    """

    predictor: TilePredictor
    blender_factory: BlenderFactory
    tile: int
    overlap: float = 0.25
    batch_size: int = 8

    def grid(self, height: int, width: int) -> list[Tile]:
        """Every tile covering a ``height`` x ``width`` level with this inferer's size and overlap."""
        return tile_grid(height, width, self.tile, self.overlap)

    def __call__(
        self,
        reader: SlideReader,
        level: int,
        tiles: list[Tile],
        raster: RawRaster,
        on_batch: Callable[[int], None] | None = None,
    ) -> BandBlender:
        """Predict ``tiles`` of ``reader``'s ``level`` into ``raster``; returns the finished blender."""
        blender = self.blender_factory(raster, self.tile)
        stitch(reader, level, tiles, self.predictor, blender, self.tile, self.batch_size, on_batch)
        return blender
