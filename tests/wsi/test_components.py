"""Connected components in row bands, joined across band boundaries (the exhaustive comparison with one
labelling of the whole mask is in ``test_polygons.py``, through the minimum-area rule)."""

from __future__ import annotations

import numpy as np
import pytest

from teachseg.wsi.components import find_components


def test_components_join_across_bands_by_connectivity():
    m = np.zeros((4, 6), np.uint8)
    m[1, 1] = m[2, 2] = 1  # diagonal neighbours in two bands: one component with 8, two with 4
    m[1, 4] = m[2, 4] = 1  # vertical neighbours: one component either way
    for band in (1, 2, 4):
        eight = find_components(m, 8, band=band)
        four = find_components(m, 4, band=band)
        assert sorted(eight.area[eight.area > 0]) == [2, 2]
        assert sorted(four.area[four.area > 0]) == [1, 1, 2]
        background = find_components(m, 4, invert=True, band=band)
        (i,) = np.flatnonzero(background.area > 0)  # one background region, joined across every band
        assert background.area[i] == 20 and background.touches_edge[i]
    ring = np.ones((5, 5), np.uint8)
    ring[2, 2] = 0  # a one-pixel hole in the middle band: not on the edge
    for band in (1, 2, 5):
        hole = find_components(ring, 4, invert=True, band=band)
        (i,) = np.flatnonzero(hole.area > 0)
        assert hole.area[i] == 1 and not hole.touches_edge[i]


def test_connectivity_other_than_4_or_8_is_refused():
    with pytest.raises(ValueError, match="4 or 8"):
        find_components(np.zeros((3, 3), np.uint8), 6)
