"""Synthetic pyramidal slides for tests and benchmarks (tifffile; generated tile by tile, no downloads).

The slide is drawn from smooth low-resolution random fields: white glass, pink "stroma" where the tissue
field is high, and dark purple "tumour" blobs inside the tissue. Each pyramid level is rendered directly at
its own resolution, so even a gigapixel slide needs only one tile in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi

GLASS = np.array([242, 241, 239], np.float32)
STROMA = np.array([226, 150, 196], np.float32)
TUMOUR = np.array([105, 45, 140], np.float32)


def write_pyramid_rgb(
    path: str | Path,
    render: Callable[[int, int, int, int, int], np.ndarray] | np.ndarray,
    width: int | None = None,
    height: int | None = None,
    mpp: float | None = 0.5,
    tile: int = 256,
    min_side: int = 512,
    compression: str | int = "jpeg",
    factor: int = 2,
    description: str | None = None,
) -> Path:
    """Write a tiled pyramidal RGB TIFF (one IFD per level, shrinking by ``factor`` until ``min_side``).

    Args:
        render: an (H, W, 3) uint8 array, or ``render(level_downsample, y, x, h, w)`` returning that region of
            the level in level pixels.
        mpp: level-0 resolution written as pixels per centimetre (None: no resolution tags).
        compression: a tifffile compression name or TIFF code (e.g. ``"jpeg"``, ``"jpeg2000"``).
        factor: downsample between consecutive levels (2; 4 as in Aperio SVS).
        description: level 0's ImageDescription (``"Aperio Image Library ..."`` makes OpenSlide read an
            ``.svs`` as Aperio, which decodes Aperio JPEG2000, compression 33003/33005).
    """
    import tifffile

    if isinstance(render, np.ndarray):
        array = render
        height, width = array.shape[:2]

        def render(ds: int, y: int, x: int, h: int, w: int) -> np.ndarray:  # noqa: F811
            src = array[y * ds : (y + h) * ds, x * ds : (x + w) * ds]
            if ds > 1:
                hh, ww = src.shape[0] // ds * ds, src.shape[1] // ds * ds
                src = src[:hh, :ww].reshape(hh // ds, ds, ww // ds, ds, 3).mean(axis=(1, 3))
            out = np.full((h, w, 3), 255, np.uint8)
            out[: src.shape[0], : src.shape[1]] = src.astype(np.uint8)
            return out

    assert width is not None and height is not None
    ds = 1
    levels = []
    while True:
        levels.append(ds)
        if max(width, height) // (ds * factor) < min_side:
            break
        ds *= factor

    def tiles(ds: int, h: int, w: int) -> Iterator[np.ndarray]:
        for y in range(0, h, tile):
            for x in range(0, w, tile):
                yield render(ds, y, x, tile, tile)

    kw: dict[str, Any] = {"compressionargs": {"level": 90}} if compression == "jpeg" else {}
    with tifffile.TiffWriter(path, bigtiff=width * height * 3 > 2**31) as tw:
        for i, ds in enumerate(levels):
            h, w = height // ds, width // ds
            res: dict[str, Any] = {}
            if mpp:
                res = {"resolution": (1e4 / (mpp * ds), 1e4 / (mpp * ds)), "resolutionunit": "CENTIMETER"}
            tw.write(
                tiles(ds, h, w),
                shape=(h, w, 3),
                dtype=np.uint8,
                tile=(tile, tile),
                photometric="rgb",
                compression=compression,
                subfiletype=1 if i else 0,
                description=description if i == 0 else None,
                metadata=None,
                **kw,
                **res,
            )
    return Path(path)


class SyntheticTissue:
    """Smooth random tissue and tumour fields over a ``width`` x ``height`` slide.

    Args:
        tissue_fraction: approximate share of the slide covered by tissue.
        tumour_fraction: approximate share of the tissue that is tumour.
        cell: level-0 pixels per field sample (feature size).
    """

    def __init__(
        self,
        width: int,
        height: int,
        tissue_fraction: float = 0.4,
        tumour_fraction: float = 0.35,
        cell: int = 64,
        seed: int = 0,
    ):
        self.width, self.height, self.cell = width, height, cell
        rng = np.random.default_rng(seed)
        fh, fw = height // cell + 3, width // cell + 3
        t = ndi.gaussian_filter(rng.standard_normal((fh, fw)), sigma=max(2.0, 6.0 * (fh / 128) ** 0.5))
        u = ndi.gaussian_filter(rng.standard_normal((fh, fw)), sigma=3.0)
        self.tissue = (t - np.quantile(t, 1 - tissue_fraction)).astype(np.float32) / (t.std() + 1e-9)
        inside = self.tissue > 0
        ut = np.quantile(u[inside], 1 - tumour_fraction) if inside.any() else 0.0
        self.tumour = (u - ut).astype(np.float32) / (u.std() + 1e-9)
        self.seed = seed

    def _field(self, f: np.ndarray, ds: int, y: int, x: int, h: int, w: int) -> np.ndarray:
        ys = ((np.arange(h) + y) * ds + ds / 2) / self.cell
        xs = ((np.arange(w) + x) * ds + ds / 2) / self.cell
        yy, xx = np.meshgrid(ys, xs, indexing="ij")
        return ndi.map_coordinates(f, [yy, xx], order=1, mode="nearest")

    def tumour_truth(self, ds: int, y: int, x: int, h: int, w: int) -> np.ndarray:
        """The ground-truth tumour mask of a region."""
        return (self._field(self.tissue, ds, y, x, h, w) > 0) & (self._field(self.tumour, ds, y, x, h, w) > 0)

    def render(self, ds: int, y: int, x: int, h: int, w: int) -> np.ndarray:
        """RGB of a region of the level with downsample ``ds`` (level pixels)."""
        t = np.clip(self._field(self.tissue, ds, y, x, h, w) * 8.0, 0, 1)[..., None]
        u = np.clip(self._field(self.tumour, ds, y, x, h, w) * 8.0, 0, 1)[..., None]
        rng = np.random.default_rng((self.seed, ds, y, x))
        tex = rng.normal(0.0, 12.0 / ds**0.5, (h, w, 1)).astype(np.float32)
        tissue_rgb = STROMA * (1 - u) + TUMOUR * u + tex
        rgb = GLASS * (1 - t) + tissue_rgb * t + rng.normal(0.0, 1.5, (h, w, 1)).astype(np.float32)
        outside = ((np.arange(h) + y) * ds >= self.height)[:, None] | ((np.arange(w) + x) * ds >= self.width)[
            None, :
        ]
        rgb[outside] = 255
        return np.clip(rgb, 0, 255).astype(np.uint8)


def synthetic_slide(
    path: str | Path,
    size: int | tuple[int, int] = 4096,
    tissue_fraction: float = 0.4,
    mpp: float | None = 0.5,
    seed: int = 0,
    tile: int = 256,
) -> SyntheticTissue:
    """Write a synthetic H&E-like pyramidal slide to ``path``; returns its fields (for ground truth)."""
    w, h = (size, size) if isinstance(size, int) else size
    fields = SyntheticTissue(w, h, tissue_fraction=tissue_fraction, seed=seed)
    write_pyramid_rgb(path, fields.render, w, h, mpp=mpp, tile=tile)
    return fields
