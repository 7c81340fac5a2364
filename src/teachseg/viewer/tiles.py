"""Deep Zoom tiles of a slide and of its probability map, on one grid: the slide's level-0 pixels.

The slide's tiles come from OpenSlide's :class:`~openslide.deepzoom.DeepZoomGenerator`, reading through the
same teachseg reader ``predict`` used (OpenSlide, tiffslide, tifffile or Pillow), so every input ``predict``
read can be viewed and each tile is read from the nearest pyramid level, whatever the slide's size.

The probability map is stored at the resolution it was predicted at (a pyramidal ``NAME_prob.tif`` whose
level 0 spans the slide's extent, or ``NAME_prob.png`` for an image). Its tiles are resampled onto the
slide's own Deep Zoom grid, so the two layers share one geometry and lie over each other exactly in the
browser (no scaling in the page), and are colour-mapped with transparency on the fly.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from openslide import AbstractSlide
from openslide.deepzoom import DeepZoomGenerator
from PIL import Image

from teachseg.wsi.readers import SlideReader, open_slide

#: Deep Zoom tile side and overlap (254 + 2 x 1 = 256 px, what OpenSeadragon draws best).
TILE = 254
OVERLAP = 1
JPEG_QUALITY = 85
#: The probability colour map: (probability, RGB) stops, linear in between; alpha is the probability itself,
#: so an unsure pixel is faint and a sure one opaque (the page's opacity slider scales both).
COLOUR_STOPS: tuple[tuple[float, tuple[int, int, int]], ...] = (
    (0.0, (40, 90, 255)),
    (0.5, (0, 200, 160)),
    (1.0, (255, 235, 0)),
)


def colour_lut() -> np.ndarray:
    """The (256, 4) uint8 RGBA colour of each stored 8-bit probability (value / 255)."""
    p = np.arange(256) / 255.0
    xs = [s for s, _ in COLOUR_STOPS]
    rgb = np.stack([np.interp(p, xs, [c[i] for _, c in COLOUR_STOPS]) for i in range(3)], axis=-1)
    return np.concatenate([np.rint(rgb), np.arange(256)[:, None]], axis=-1).astype(np.uint8)


class Geometry(AbstractSlide):
    """A blank slide of given level sizes and downsamples: what :class:`~openslide.deepzoom.DeepZoomGenerator`
    needs to lay out its grid (the probability map's, from the slide's level-0 size alone)."""

    def __init__(self, sizes: list[tuple[int, int]], downsamples: list[float]):
        super().__init__()
        self._sizes = tuple(sizes)
        self._downsamples = tuple(downsamples)

    @classmethod
    def detect_format(cls, filename: Any) -> str | None:
        return None

    def close(self) -> None:
        pass

    @property
    def level_count(self) -> int:
        return len(self._sizes)

    @property
    def level_dimensions(self) -> tuple[tuple[int, int], ...]:
        return self._sizes

    @property
    def level_downsamples(self) -> tuple[float, ...]:
        return self._downsamples

    @property
    def properties(self) -> dict[str, str]:
        return {}

    @property
    def associated_images(self) -> dict[str, Any]:
        return {}

    def get_best_level_for_downsample(self, downsample: float) -> int:
        """OpenSlide's rule: the coarsest level at least as fine as ``downsample``."""
        fine = [i for i, d in enumerate(self._downsamples) if d <= downsample * (1 + 1e-9)]
        return max(fine, default=0)

    def read_region(self, location: tuple[int, int], level: int, size: tuple[int, int]) -> Image.Image:
        return Image.new("RGBA", size)


class ReaderSlide(Geometry):
    """A teachseg :class:`~teachseg.wsi.readers.SlideReader` as an OpenSlide slide (RGBA regions, level-0
    origin), for :class:`~openslide.deepzoom.DeepZoomGenerator`."""

    def __init__(self, reader: SlideReader):
        super().__init__(
            [(lv.width, lv.height) for lv in reader.levels], [lv.downsample for lv in reader.levels]
        )
        self.reader = reader
        # OpenSlide is safe to read from several threads; the pure-Python readers get one read at a time
        self._lock = threading.Lock() if reader.backend != "openslide" else None

    def read_region(self, location: tuple[int, int], level: int, size: tuple[int, int]) -> Image.Image:
        d = self._downsamples[level]
        x, y = int(location[0] / d), int(location[1] / d)
        with _maybe(self._lock):
            rgb = self.reader.read(level, x, y, size[0], size[1])
        return Image.fromarray(rgb).convert("RGBA")


@contextmanager
def _maybe(lock: threading.Lock | None) -> Iterator[None]:
    if lock is None:
        yield
    else:
        with lock:
            yield


class SlideTiles:
    """JPEG Deep Zoom tiles of a slide (or image), read from its nearest pyramid level."""

    def __init__(self, path: Path):
        self.reader = open_slide(path)
        self.dz = DeepZoomGenerator(ReaderSlide(self.reader), tile_size=TILE, overlap=OVERLAP)

    @property
    def dimensions(self) -> tuple[int, int]:
        """Level-0 (width, height)."""
        return self.reader.dimensions

    def dzi(self) -> str:
        """The Deep Zoom descriptor (XML)."""
        return self.dz.get_dzi("jpeg")

    def tile(self, level: int, col: int, row: int) -> bytes:
        """Tile ``(col, row)`` of Deep Zoom level ``level`` as JPEG bytes (ValueError when it does not exist)."""
        buf = io.BytesIO()
        self.dz.get_tile(level, (col, row)).convert("RGB").save(buf, "JPEG", quality=JPEG_QUALITY)
        return buf.getvalue()


class ProbabilityTiles:
    """RGBA PNG tiles of a probability map on the Deep Zoom grid of a ``width`` x ``height`` slide.

    Each tile is sampled from the coarsest map level still at least as fine as the tile (bilinear, pixel
    centres mapped exactly, per axis), so a tile costs about its own size in map pixels at any zoom.
    """

    def __init__(self, path: Path, width: int, height: int):
        self.reader = open_slide(path)
        self.width, self.height = width, height
        self.dz = DeepZoomGenerator(Geometry([(width, height)], [1.0]), tile_size=TILE, overlap=OVERLAP)
        self._lut = colour_lut()
        self._lock = threading.Lock() if self.reader.backend != "openslide" else None

    def dzi(self) -> str:
        """The Deep Zoom descriptor (XML), the same grid as the slide's."""
        return self.dz.get_dzi("png")

    def probabilities(self, level: int, col: int, row: int) -> np.ndarray:
        """Tile ``(col, row)`` of Deep Zoom level ``level`` as uint8 probabilities x 255 (ValueError when it
        does not exist)."""
        import cv2

        zw, zh = self.dz.get_tile_dimensions(level, (col, row))  # raises ValueError off the grid
        scale = 2 ** (self.dz.level_count - 1 - level)  # level-0 pixels per Deep Zoom pixel
        zx, zy = col * TILE - (OVERLAP if col else 0), row * TILE - (OVERLAP if row else 0)
        lv = self._level_for(scale)
        # level-0 pixels per map pixel of this level, per axis (the map spans the slide's extent)
        ax, ay = self.width / lv.width, self.height / lv.height
        # map coordinates of the tile's first pixel centre, and the step between pixel centres
        u0, v0 = (zx + 0.5) * scale / ax - 0.5, (zy + 0.5) * scale / ay - 0.5
        du, dv = scale / ax, scale / ay
        x0, y0 = max(math.floor(u0) - 1, 0), max(math.floor(v0) - 1, 0)
        x1 = min(math.ceil(u0 + du * (zw - 1)) + 2, lv.width)
        y1 = min(math.ceil(v0 + dv * (zh - 1)) + 2, lv.height)
        if x1 <= x0 or y1 <= y0:
            return np.zeros((zh, zw), np.uint8)
        with _maybe(self._lock):
            crop = np.ascontiguousarray(self.reader.read(lv.index, x0, y0, x1 - x0, y1 - y0)[..., 0])
        warp = np.array([[du, 0.0, u0 - x0], [0.0, dv, v0 - y0]], dtype=np.float64)
        return cv2.warpAffine(
            crop,
            warp,
            (zw, zh),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            # the map spans the slide's extent: samples past its edge lie within half a map pixel of it
            borderMode=cv2.BORDER_REPLICATE,
        )

    def tile(self, level: int, col: int, row: int) -> bytes:
        """The tile colour-mapped with transparency, as PNG bytes."""
        rgba = self._lut[self.probabilities(level, col, row)]
        buf = io.BytesIO()
        Image.fromarray(rgba, "RGBA").save(buf, "PNG", compress_level=1)
        return buf.getvalue()

    def value(self, x: float, y: float) -> float | None:
        """The probability at level-0 pixel ``(x, y)`` (the map's pixel there), None outside the slide."""
        if not (0 <= x < self.width and 0 <= y < self.height):
            return None
        lv = self.reader.levels[0]
        u = min(int(x * lv.width / self.width), lv.width - 1)
        v = min(int(y * lv.height / self.height), lv.height - 1)
        with _maybe(self._lock):
            return float(self.reader.read(0, u, v, 1, 1)[0, 0, 0]) / 255.0

    def _level_for(self, scale: float) -> Any:
        """The coarsest map level whose pixels are no larger than ``scale`` level-0 pixels (else level 0)."""
        fine = [lv for lv in self.reader.levels if self.width / lv.width <= scale * (1 + 1e-9)]
        return fine[-1] if fine else self.reader.levels[0]
