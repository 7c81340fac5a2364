"""Masks to polygons and back, exactly, with the area of every step accounted for.

A binary mask becomes QuPath annotations in three documented steps:

1. **Minimum-area rule** (:func:`filter_mask`): connected tumour components (8-connected) smaller than
   ``min_area`` are removed, then holes (4-connected background regions that do not touch the image border)
   smaller than ``min_area`` are filled. Nothing else changes the mask.
2. **Exact vectorisation** (:func:`mask_polygons`): the outline of every pixel of the filtered mask is traced
   along pixel *edges* (GDAL's polygonize, through rasterio), so the polygons cover exactly the filtered mask's
   pixels: no half-pixel shrinkage of centre-line contours, holes kept, islands inside holes become their own
   polygons. Outlines are traced with 4-connectivity, so pixels that meet only at a corner become separate
   polygons touching at that corner (valid as they are; the minimum-area rule still treats them as one
   component). Any invalid geometry is repaired with ``shapely.make_valid`` and *every* polygonal part of the
   repaired geometry (Polygon, MultiPolygon, nested collections) is kept.
3. **Simplification** (optional): Douglas-Peucker with topology preserved, tolerance in output units.
   On pixel staircases it replaces steps by diagonals that cut as much as they add, so it changes the area
   by far less than one pixel per vertex (a fraction of a percent on tumour-sized regions).

:func:`rasterise_polygons` is the inverse of step 2 (a pixel is inside when its centre is), so a mask ->
polygons -> mask round trip gives back the filtered mask pixel for pixel.

Why rasterio: GDAL's polygonize is the maintained, exact implementation of raster-to-vector on pixel edges
(and ``rasterize`` its exact inverse); OpenCV's ``findContours`` traces pixel centres, which loses half a
pixel along every boundary (about 5% of a 40-pixel-wide blob) and makes touching rings that must be repaired.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from teachseg.wsi.components import BAND, apply_rule


@dataclass
class Vectorised:
    """Polygons of a mask and the area accounting (all areas in output units squared)."""

    polygons: list[Any] = field(default_factory=list)
    mask_area: float = 0.0  #: area of the mask before the minimum-area rule
    removed_area: float = 0.0  #: area of the components dropped by the minimum-area rule
    filled_area: float = 0.0  #: area of the holes filled by the minimum-area rule
    polygon_area: float = 0.0  #: total area of the polygons (they do not overlap)

    @property
    def expected_area(self) -> float:
        """The area the polygons should have: the mask after the minimum-area rule."""
        return self.mask_area - self.removed_area + self.filled_area

    @property
    def unexplained_fraction(self) -> float:
        """``|polygon_area - expected_area| / expected_area`` (0 when both are 0)."""
        exp = self.expected_area
        if exp <= 0:
            return 0.0 if self.polygon_area <= 0 else float("inf")
        return abs(self.polygon_area - exp) / exp


def _as_u8(mask: np.ndarray, copy: bool = True) -> np.ndarray:
    """``mask`` as a C-contiguous 0/1 uint8 array: a new one, or ``mask`` itself when it already is one and
    ``copy`` is false (one byte per pixel either way: no boolean temporary)."""
    if mask.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {mask.shape}")
    if (
        not copy
        and mask.dtype == np.uint8
        and mask.flags.c_contiguous
        and (mask.size == 0 or mask.max() <= 1)
    ):
        return mask
    out = np.empty(mask.shape, dtype=np.uint8)
    np.not_equal(mask, 0, out=out.view(bool))
    return out


def filter_mask(mask: np.ndarray, min_area_px: float, band: int = BAND) -> tuple[np.ndarray, int, int]:
    """Apply the minimum-area rule to a binary mask (``min_area_px`` in mask pixels).

    Components are found in bands of ``band`` rows and joined across them
    (:mod:`teachseg.wsi.components`): the result is that of labelling the whole mask at once, with one band
    of labels in memory instead of four bytes per pixel of the mask.

    Returns:
        The filtered 0/1 uint8 mask, the number of pixels removed (small 8-connected components) and the
        number filled (small 4-connected holes not touching the border).
    """
    m = _as_u8(mask)
    if min_area_px <= 0 or not m.any():
        return m, 0, 0
    removed = apply_rule(m, 8, lambda c: c.area < min_area_px, 0, band=band)
    filled = apply_rule(m, 4, lambda c: ~c.touches_edge & (c.area < min_area_px), 1, invert=True, band=band)
    return m, removed, filled


def polygonal_parts(geom: Any) -> Iterator[Any]:
    """Every Polygon inside ``geom`` (Polygon, MultiPolygon, nested GeometryCollections); lines and points
    are skipped because they have no area."""
    kind = geom.geom_type
    if kind == "Polygon":
        if not geom.is_empty:
            yield geom
    elif kind in ("MultiPolygon", "GeometryCollection"):
        for g in geom.geoms:
            yield from polygonal_parts(g)


def valid_parts(geom: Any) -> list[Any]:
    """``geom`` repaired if needed, as a list of valid polygons holding all of its area."""
    from shapely.validation import make_valid

    if not geom.is_valid:
        geom = make_valid(geom)
    return list(polygonal_parts(geom))


def mask_polygons(mask: np.ndarray, scale: float = 1.0, simplify: float = 0.0) -> list[Any]:
    """Exact pixel-edge polygons (holes kept) of a binary mask, in ``scale`` output units per pixel.

    Pixel ``(row, col)`` covers ``[col, col + 1] x [row, row + 1]`` times ``scale``. Polygons are
    4-connected pieces. ``simplify`` is a Douglas-Peucker tolerance in output units (0: none).
    """
    from rasterio.features import shapes
    from rasterio.transform import Affine
    from shapely.geometry import shape

    m = _as_u8(mask, copy=False)  # read only here
    if not m.any():
        return []
    transform = Affine(scale, 0.0, 0.0, 0.0, scale, 0.0)
    out: list[Any] = []
    for geom, _ in shapes(m, mask=m.view(bool), connectivity=4, transform=transform):
        for p in valid_parts(shape(geom)):
            if simplify > 0:
                q = p.simplify(simplify, preserve_topology=True)
                out.extend(valid_parts(q) if not q.is_empty else [p])
            else:
                out.append(p)
    return out


def vectorise_mask(
    mask: np.ndarray, scale: float = 1.0, min_area: float = 0.0, simplify: float = 0.0
) -> Vectorised:
    """Minimum-area rule, exact polygons and simplification, with the area of each step.

    Args:
        mask: 2-D array, non-zero = inside.
        scale: output units per mask pixel (e.g. level-0 pixels per mask pixel).
        min_area: components and holes smaller than this (output units squared) are removed / filled.
        simplify: Douglas-Peucker tolerance in output units.
    """
    px_area = scale * scale
    if mask.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {mask.shape}")
    total = int(np.count_nonzero(mask))
    # filter_mask makes the one working copy: the caller's mask is left as it is
    filtered, removed, filled = filter_mask(mask, min_area / px_area if min_area > 0 else 0.0)
    polys = mask_polygons(filtered, scale, simplify)
    return Vectorised(
        polygons=polys,
        mask_area=total * px_area,
        removed_area=removed * px_area,
        filled_area=filled * px_area,
        polygon_area=float(sum(p.area for p in polys)),
    )


def rasterise_polygons(
    polygons: Iterable[Any], shape: tuple[int, int], x0: float = 0.0, y0: float = 0.0, scale: float = 1.0
) -> np.ndarray:
    """A uint8 0/1 mask of ``polygons`` over a raster whose pixel ``(0, 0)`` starts at ``(x0, y0)``.

    ``scale`` is polygon units per raster pixel. A pixel is inside when its centre is inside a polygon
    (holes cut out of their own polygon only; overlapping polygons are united), the exact inverse of
    :func:`mask_polygons`.
    """
    from rasterio.features import rasterize
    from rasterio.transform import Affine

    parts = [(p, 1) for g in polygons for p in polygonal_parts(g)]
    if not parts:
        return np.zeros(shape, dtype=np.uint8)
    transform = Affine(scale, 0.0, x0, 0.0, scale, y0)
    return rasterize(parts, out_shape=shape, transform=transform, fill=0, dtype=np.uint8, all_touched=False)
