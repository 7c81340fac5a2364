"""Masks to polygons and back: the polygons must hold the mask, minus only the documented minimum-area rule.

The reference filter here is written independently of the package (scipy.ndimage instead of OpenCV).
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi
from shapely.geometry import GeometryCollection, LineString, MultiPolygon, Polygon, box

from teachseg.wsi.polygons import (
    filter_mask,
    mask_polygons,
    polygonal_parts,
    rasterise_polygons,
    vectorise_mask,
)

EIGHT = np.ones((3, 3), dtype=bool)
FOUR = ndi.generate_binary_structure(2, 1)


def reference_filter(mask: np.ndarray, min_area_px: float) -> np.ndarray:
    """Drop 8-connected components under ``min_area_px``, then fill 4-connected inner holes under it."""
    m = mask.astype(bool).copy()
    if min_area_px <= 0:
        return m
    lab, n = ndi.label(m, structure=EIGHT)
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    small = sizes < min_area_px
    small[0] = False
    m[small[lab]] = False
    lab, n = ndi.label(~m, structure=FOUR)
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    border = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
    fill = sizes < min_area_px
    fill[0] = False
    fill[border] = False
    m[fill[lab]] = True
    return m


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else 2.0 * (a & b).sum() / total


def random_mask(seed: int, size: int, n_blobs: int, n_specks: int) -> np.ndarray:
    """Blobs with holes (and islands in the holes), corner contacts, one-pixel bridges and specks."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    m = np.zeros((size, size), dtype=bool)
    for _ in range(n_blobs):
        cy, cx = rng.integers(0, size, 2)
        r = rng.integers(4, max(5, size // 4))
        d2 = (yy - cy) ** 2 + (xx - cx) ** 2
        m |= d2 < r * r
        if r > 6:  # a hole, sometimes with an island inside it
            hr = rng.integers(2, r // 2)
            m &= ~(d2 < hr * hr)
            if hr > 3 and rng.random() < 0.5:
                m |= d2 < (hr // 2) ** 2
    for _ in range(max(1, n_blobs // 2)):  # one-pixel bridges and diagonal corner contacts
        y, x = rng.integers(1, size - 1, 2)
        length = rng.integers(2, size // 2)
        if rng.random() < 0.5:
            m[y, x : x + length] = True
        else:
            k = np.arange(min(length, size - max(y, x)))
            m[y + k, x + k] = True
    specks = rng.integers(0, size, (n_specks, 2))
    m[specks[:, 0], specks[:, 1]] = True
    # a checkerboard patch: pixels touching only at corners
    c = rng.integers(0, size - 8, 2)
    patch = (np.add.outer(np.arange(8), np.arange(8)) % 2).astype(bool)
    m[c[0] : c[0] + 8, c[1] : c[1] + 8] |= patch
    return m


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    size=st.integers(24, 160),
    n_blobs=st.integers(0, 8),
    n_specks=st.integers(0, 300),
    min_area_px=st.sampled_from([0.0, 1.0, 4.0, 20.0, 60.0]),
    scale=st.sampled_from([1.0, 2.0, 0.5]),
    simplify_px=st.sampled_from([0.0, 0.5]),
)
def test_polygons_hold_the_filtered_mask(seed, size, n_blobs, n_specks, min_area_px, scale, simplify_px):
    mask = random_mask(seed, size, n_blobs, n_specks)
    expected = reference_filter(mask, min_area_px)
    v = vectorise_mask(mask, scale, min_area=min_area_px * scale * scale, simplify=simplify_px * scale)
    px = scale * scale
    assert v.mask_area == pytest.approx(mask.sum() * px)
    assert v.expected_area == pytest.approx(expected.sum() * px)
    union = shapely.union_all(v.polygons) if v.polygons else Polygon()
    assert union.area == pytest.approx(v.polygon_area, rel=1e-9, abs=1e-6)  # parts never overlap
    assert all(p.is_valid and p.geom_type == "Polygon" for p in v.polygons)
    assert union.area == pytest.approx(expected.sum() * px, rel=0.01, abs=1e-6)
    back = rasterise_polygons(v.polygons, mask.shape, scale=scale)
    assert dice(back, expected) >= 0.99


def test_exact_square_with_hole_and_island():
    m = np.zeros((60, 60), np.uint8)
    m[10:50, 10:50] = 1
    m[20:40, 20:40] = 0  # hole
    m[27:33, 27:33] = 1  # island in the hole
    polys = mask_polygons(m, scale=2.0)
    assert sorted(len(p.interiors) for p in polys) == [0, 1]
    outer = max(polys, key=lambda p: p.area)
    assert outer.bounds == (20.0, 20.0, 100.0, 100.0)  # pixel edges, not pixel centres
    assert outer.area == (40 * 40 - 20 * 20) * 4
    assert sum(p.area for p in polys) == m.sum() * 4
    assert np.array_equal(rasterise_polygons(polys, m.shape, scale=2.0), m)


def test_minimum_area_rule_drops_specks_and_fills_small_holes():
    m = np.zeros((100, 100), np.uint8)
    m[10:60, 10:60] = 1
    m[25:40, 25:40] = 0  # hole of 225 px: kept
    m[50:52, 50:52] = 0  # hole of 4 px: filled
    m[80, 80] = 1  # speck: dropped
    m[0:3, 97:100] = 0  # background at the border is never a hole
    filtered, removed, filled = filter_mask(m, 50)
    assert removed == 1 and filled == 4
    assert np.array_equal(filtered.astype(bool), reference_filter(m, 50))
    v = vectorise_mask(m, scale=2.0, min_area=50 * 4, simplify=1.0)
    (p,) = v.polygons
    assert len(p.interiors) == 1
    assert v.polygon_area == pytest.approx((50 * 50 - 225) * 4, rel=1e-3)
    assert v.removed_area == 4 and v.filled_area == 16


def test_tumour_with_thousands_of_holes_is_kept_whole():
    """The bug of 0.1: a large region with many holes became a repaired MultiPolygon and was dropped."""
    rng = np.random.default_rng(7)
    size = 1200
    yy, xx = np.mgrid[0:size, 0:size]
    m = ((yy - 600) ** 2 + (xx - 600) ** 2 < 520**2).astype(np.uint8)
    holes = rng.integers(100, 1100, (4000, 2))
    for dy, dx in ((0, 0), (0, 1), (1, 0)):  # L-shaped 3-pixel holes, many touching each other diagonally
        m[holes[:, 0] + dy, holes[:, 1] + dx] = 0
    specks = rng.integers(0, size, (3000, 2))
    m[specks[:, 0], specks[:, 1]] = 1
    v = vectorise_mask(m, scale=1.0, min_area=2.0, simplify=0.5)
    expected = reference_filter(m, 2.0)
    assert v.expected_area == expected.sum()
    assert v.polygon_area == pytest.approx(expected.sum(), rel=0.01)
    assert v.unexplained_fraction < 0.01
    assert sum(len(p.interiors) for p in v.polygons) > 1000  # holes kept
    assert dice(rasterise_polygons(v.polygons, m.shape), expected) >= 0.99


def test_polygonal_parts_flattens_repaired_geometries():
    a, b, c = box(0, 0, 1, 1), box(2, 2, 3, 3), box(5, 5, 7, 7)
    nested = GeometryCollection([MultiPolygon([a, b]), LineString([(0, 0), (9, 9)]), GeometryCollection([c])])
    parts = list(polygonal_parts(nested))
    assert sorted(p.area for p in parts) == [1.0, 1.0, 4.0]
    bowtie = Polygon([(0, 0), (2, 2), (2, 0), (0, 2)])  # self-intersecting: make_valid gives a MultiPolygon
    from teachseg.wsi.polygons import valid_parts

    repaired = valid_parts(bowtie)
    assert len(repaired) == 2 and sum(p.area for p in repaired) == pytest.approx(2.0)


def test_empty_and_full_masks():
    assert mask_polygons(np.zeros((10, 10), np.uint8)) == []
    v = vectorise_mask(np.zeros((10, 10), bool), min_area=5.0)
    assert v.polygons == [] and v.unexplained_fraction == 0.0
    (full,) = mask_polygons(np.ones((10, 12), bool), scale=3.0)
    assert full.area == 10 * 12 * 9
    assert rasterise_polygons([], (4, 4)).sum() == 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    size=st.integers(16, 96),
    n_blobs=st.integers(0, 8),
    n_specks=st.integers(0, 200),
    min_area_px=st.sampled_from([1.0, 4.0, 20.0, 60.0, 400.0]),
    band=st.integers(1, 40),
)
def test_minimum_area_rule_in_row_bands_equals_the_whole_mask(
    seed, size, n_blobs, n_specks, min_area_px, band
):
    """Components cut by band boundaries (diagonal contacts, one-pixel bridges, holes spanning bands, bands of
    one row) are joined back: the result and the counts equal those of one labelling of the whole mask."""
    mask = random_mask(seed, size, n_blobs, n_specks)
    expected = reference_filter(mask, min_area_px)
    whole, removed, filled = filter_mask(mask, min_area_px, band=10**6)
    banded, removed_b, filled_b = filter_mask(mask, min_area_px, band=band)
    assert np.array_equal(banded.astype(bool), expected)
    assert np.array_equal(banded, whole)
    assert (removed_b, filled_b) == (removed, filled)
    assert int(mask.sum()) - removed + filled == int(expected.sum())


@pytest.mark.parametrize("dtype", [np.uint8, bool, np.float32, np.int64])
def test_vectorising_leaves_the_callers_mask_as_it_was(dtype):
    m = np.zeros((40, 40), dtype=dtype)
    m[5:30, 5:30] = 1
    m[10:12, 10:12] = 0  # a small hole the minimum-area rule fills
    m[35, 35] = 1  # a speck it drops
    before = m.copy()
    v = vectorise_mask(m, min_area=10)
    assert np.array_equal(m, before)
    assert v.filled_area == 4 and v.removed_area == 1
    assert v.polygon_area == pytest.approx(25 * 25)
