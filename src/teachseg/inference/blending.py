"""Weighted stitching of tile predictions in row bands, streamed to disk.

Only ``tile`` rows of the level are ever held in memory (a float32 sum and a float32 weight band); rows
that no later tile can touch are finalised to 8-bit and written to a raw file with plain file writes (not a
memory map, whose resident pages would count against the process), so memory stays bounded whatever the
slide size.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from teachseg.inference.quantise import threshold_u8, to_uint8


class RawRaster:
    """A uint8 (height, width) raster stored row-major in a raw file, read and written in row bands."""

    def __init__(self, path: str | Path, height: int, width: int, create: bool = True):
        self.path = Path(path)
        self.height, self.width = int(height), int(width)
        if create:
            with open(self.path, "wb") as fh:
                fh.truncate(self.height * self.width)
        self._fd = os.open(self.path, os.O_RDWR)

    def write_rows(self, y: int, rows: np.ndarray) -> None:
        """Write ``rows`` (uint8) into the raster from row ``y`` down."""
        rows = np.ascontiguousarray(rows, dtype=np.uint8)
        assert rows.ndim == 2 and rows.shape[1] == self.width and y + rows.shape[0] <= self.height
        os.pwrite(self._fd, rows.tobytes(), y * self.width)

    def read_rows(self, y0: int, y1: int) -> np.ndarray:
        """Rows ``y0`` to ``y1`` of the raster as a uint8 array."""
        y0, y1 = max(0, y0), min(self.height, y1)
        n = (y1 - y0) * self.width
        buf = os.pread(self._fd, n, y0 * self.width)
        return np.frombuffer(buf, dtype=np.uint8).reshape(y1 - y0, self.width)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> RawRaster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BandBlender:
    """Accumulates weighted tile predictions in a sliding band of rows and streams finished rows out.

    Tiles must be added in non-decreasing ``y`` order (row-major tile order). Pixels no tile covered are 0.

    Args:
        out: raster receiving the finished 8-bit probabilities (``round(p * 255)``).
        tile: tile size (the band height).
        weight: (tile, tile) blending weights.
        threshold: probabilities at or above it count as positive in :attr:`positive_pixels`.
    """

    def __init__(self, out: RawRaster, tile: int, weight: np.ndarray, threshold: float = 0.5):
        self.out = out
        self.tile = tile
        self.weight = weight.astype(np.float32)
        self.band_w = max(out.width, tile)
        self.acc = np.zeros((tile, self.band_w), dtype=np.float32)
        self.wsum = np.zeros((tile, self.band_w), dtype=np.float32)
        self.top = 0  # level row of the band's first row
        self.written = 0  # rows already written to ``out``
        self.threshold_u8 = threshold_u8(threshold)
        self.positive_pixels = 0

    def add(self, y: int, x: int, prob: np.ndarray) -> None:
        """Blend a (tile, tile) probability tile whose top-left corner is at (y, x)."""
        if y < self.top:
            raise ValueError(f"tiles must come in row order: got y={y} after the band moved to {self.top}")
        if y > self.top:
            self._advance(y)
        t = self.tile
        self.acc[:, x : x + t] += prob * self.weight
        self.wsum[:, x : x + t] += self.weight

    def _finish_rows(self, n: int) -> None:
        """Write the band's first ``n`` rows (clipped to the image) to the output."""
        n = min(n, self.out.height - self.top)
        if n <= 0:
            return
        w = self.out.width
        acc, ws = self.acc[:n, :w], self.wsum[:n, :w]
        prob = np.divide(acc, ws, out=np.zeros_like(acc), where=ws > 0)
        u8 = to_uint8(prob)
        self.positive_pixels += int(np.count_nonzero(u8 >= self.threshold_u8))
        self.out.write_rows(self.top, u8)
        self.written = self.top + n

    def _advance(self, new_top: int) -> None:
        shift = new_top - self.top
        if shift >= self.tile:
            self._finish_rows(self.tile)
            self.acc[:] = 0
            self.wsum[:] = 0
        else:
            self._finish_rows(shift)
            self.acc[: self.tile - shift] = self.acc[shift:]
            self.wsum[: self.tile - shift] = self.wsum[shift:]
            self.acc[self.tile - shift :] = 0
            self.wsum[self.tile - shift :] = 0
        self.top = new_top

    def finish(self) -> None:
        """Write the remaining rows (rows below the last tile stay 0 from the file's creation)."""
        self._finish_rows(self.tile)
