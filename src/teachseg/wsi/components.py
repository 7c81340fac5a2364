"""Connected components of a large binary raster in row bands, with memory that does not grow with its height.

OpenCV labels a whole image into an int32 array (4 bytes per pixel, plus its own working memory): for the
8192^2 masks that ``predict`` vectorises that is over 300 MB at once, twice. Here each band of rows is
labelled on its own; components that continue across a band boundary are joined afterwards (the last row of
one band against the first row of the next, with the same 4- or 8-connectivity), as a graph solved by
:func:`scipy.sparse.csgraph.connected_components`. Only one band of labels is ever held, plus a few numbers
per component. The result is exactly that of labelling the whole raster at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: rows per band: 1024 rows of an 8192-wide raster are 32 MB of labels
BAND = 1024


@dataclass
class Components:
    """Components of a raster: per component its area (pixels) and whether it touches the raster's edge."""

    area: np.ndarray  #: float64 per component (exact below 2^53 pixels)
    touches_edge: np.ndarray  #: bool per component
    node_component: np.ndarray  #: component of each band-local label (node 0: not part of any)
    offsets: list[int]  #: per band, added to a band's label (> 0) to give its node


def _band(m: np.ndarray, y0: int, y1: int, invert: bool) -> np.ndarray:
    rows = m[y0:y1]
    return np.subtract(1, rows, dtype=np.uint8) if invert else np.ascontiguousarray(rows)


def _label(img: np.ndarray, connectivity: int) -> tuple[int, np.ndarray, np.ndarray]:
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(img, connectivity=connectivity, ltype=cv2.CV_32S)
    return n, labels, stats


def find_components(m: np.ndarray, connectivity: int, invert: bool = False, band: int = BAND) -> Components:
    """Components of the non-zero pixels of ``m`` (0/1 uint8), or of its zero pixels when ``invert``."""
    import cv2
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
    h, w = m.shape
    areas: list[np.ndarray] = [np.zeros(1)]
    edge: list[np.ndarray] = [np.zeros(1, dtype=bool)]
    links: list[np.ndarray] = []
    offsets: list[int] = []
    nodes = 1  # node 0 stands for "no component" (the other value's pixels)
    prev: np.ndarray | None = None
    for y0 in range(0, h, band):
        y1 = min(h, y0 + band)
        n, labels, stats = _label(_band(m, y0, y1, invert), connectivity)
        offset = nodes - 1
        offsets.append(offset)
        st = stats[1:]
        left, top = st[:, cv2.CC_STAT_LEFT], st[:, cv2.CC_STAT_TOP]
        right, bottom = left + st[:, cv2.CC_STAT_WIDTH], top + st[:, cv2.CC_STAT_HEIGHT]
        touch = (left == 0) | (right == w)
        if y0 == 0:
            touch |= top == 0
        if y1 == h:
            touch |= bottom == y1 - y0
        areas.append(st[:, cv2.CC_STAT_AREA].astype(np.float64))
        edge.append(touch)
        first = np.where(labels[0] > 0, labels[0] + offset, 0)
        if prev is not None:
            links.extend(_joins(prev, first, connectivity))
        prev = np.where(labels[-1] > 0, labels[-1] + offset, 0)
        nodes += n - 1
    area, touches = np.concatenate(areas), np.concatenate(edge)
    if links:
        pairs = np.concatenate(links, axis=1)
        graph = coo_matrix(
            (np.ones(pairs.shape[1], dtype=np.int8), (pairs[0], pairs[1])), shape=(nodes, nodes)
        )
        n_comp, node_comp = connected_components(graph, directed=False)
    else:
        n_comp, node_comp = nodes, np.arange(nodes)
    return Components(
        area=np.bincount(node_comp, weights=area, minlength=n_comp),
        touches_edge=np.bincount(node_comp, weights=touches, minlength=n_comp) > 0,
        node_component=node_comp,
        offsets=offsets,
    )


def _joins(above: np.ndarray, below: np.ndarray, connectivity: int) -> list[np.ndarray]:
    """(2, k) node pairs that touch across a band boundary: same column, and diagonals for 8-connectivity."""
    out = []
    shifts = (0, -1, 1) if connectivity == 8 else (0,)
    for s in shifts:
        a = above[max(0, s) : above.size + min(0, s)]
        b = below[max(0, -s) : below.size + min(0, -s)]
        both = (a > 0) & (b > 0)
        if both.any():
            out.append(np.stack([a[both], b[both]]))
    return out


def set_components(
    m: np.ndarray,
    comps: Components,
    chosen: np.ndarray,
    value: int,
    connectivity: int,
    invert: bool = False,
    band: int = BAND,
) -> None:
    """Set every pixel of the ``chosen`` components (bool per component) of ``m`` to ``value``, in place.

    The bands are labelled again exactly as :func:`find_components` labelled them (same bands, same
    connectivity, same ``invert``), so ``m`` must not have changed in between.
    """
    node_chosen = chosen[comps.node_component]
    node_chosen[0] = False
    for i, y0 in enumerate(range(0, m.shape[0], band)):
        y1 = min(m.shape[0], y0 + band)
        n, labels, _ = _label(_band(m, y0, y1, invert), connectivity)
        lut = np.zeros(n, dtype=bool)
        off = comps.offsets[i]
        lut[1:] = node_chosen[off + 1 : off + n]
        if lut.any():
            m[y0:y1][lut[labels]] = value


def apply_rule(
    m: np.ndarray,
    connectivity: int,
    choose: Callable[[Components], np.ndarray],
    value: int,
    invert: bool = False,
    band: int = BAND,
) -> int:
    """Set the components ``choose`` picks to ``value`` in place; return how many pixels they cover."""
    comps = find_components(m, connectivity, invert, band)
    chosen = choose(comps)
    chosen[comps.node_component[0]] = False  # node 0 is not a component
    count = int(comps.area[chosen].sum())
    if count:
        set_components(m, comps, chosen, value, connectivity, invert, band)
    return count
