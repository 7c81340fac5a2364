"""Tissue detection on a thumbnail: Otsu on saturation, then morphological clean-up."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

#: Below this saturation nothing is tissue, whatever Otsu says (a slide of bare glass has only noise).
MIN_SATURATION = 0.07


def _value_and_min(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel max (HSV value) and min of the channels, on the integers (a reduction over the last axis
    is strided and slow)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return np.maximum(np.maximum(r, g), b), np.minimum(np.minimum(r, g), b)


def saturation(rgb: np.ndarray) -> np.ndarray:
    """HSV saturation in [0, 1] of a uint8 (H, W, 3) image."""
    return _saturation(*_value_and_min(rgb))


def _saturation(value: np.ndarray, low: np.ndarray) -> np.ndarray:
    mx, mn = value.astype(np.float32), low.astype(np.float32)
    return np.divide(mx - mn, mx, out=np.zeros_like(mx), where=mx > 0)


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of values in [0, 1]."""
    hist, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    hist = hist.astype(np.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mu0 = np.divide(m0, w0, out=np.zeros_like(m0), where=w0 > 0)
    mu1 = np.divide(m0[-1] - m0, w1, out=np.zeros_like(m0), where=w1 > 0)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(edges[int(np.argmax(between)) + 1])


def _disk(radius: int) -> np.ndarray:
    r = np.arange(-radius, radius + 1)
    return (r[:, None] ** 2 + r[None, :] ** 2) <= radius**2


def detect_tissue(
    thumb: np.ndarray, min_area_frac: float = 1e-4, min_saturation: float = MIN_SATURATION, margin: int = 2
) -> np.ndarray:
    """Boolean tissue mask of a uint8 RGB thumbnail.

    Args:
        thumb: (H, W, 3) uint8 thumbnail.
        min_area_frac: connected components smaller than this share of the thumbnail are dropped.
        min_saturation: floor on the threshold, so blank glass yields an empty mask.
        margin: dilation in thumbnail pixels, so tiles at the tissue border are not missed.
    """
    value, low = _value_and_min(thumb)
    sat = _saturation(value, low)
    # Pure black (scanner padding) and near-white are never tissue.
    candidate = value > 20
    if not candidate.any():
        return np.zeros(sat.shape, dtype=bool)
    thr = max(otsu_threshold(sat[candidate]), min_saturation)
    mask = (sat > thr) & candidate
    mask = ndi.binary_opening(mask, structure=_disk(1))
    mask = ndi.binary_closing(mask, structure=_disk(2), border_value=0)
    mask = ndi.binary_fill_holes(mask)
    labels, n = ndi.label(mask)
    if n:
        sizes = np.bincount(labels.ravel())
        keep = sizes >= max(1.0, min_area_frac * mask.size)
        keep[0] = False
        mask = keep[labels]
    if margin > 0 and mask.any():
        mask = ndi.binary_dilation(mask, structure=_disk(margin))
    return mask
