"""The one 8-bit encoding of probabilities (PNG, TIFF, pseudo-labels) and of thresholds compared with it.

``to_uint8`` rounds ``p * 255`` to the nearest integer (halves to even, as :func:`numpy.rint`), so a stored
value ``v`` stands for probabilities in ``[(v - 0.5) / 255, (v + 0.5) / 255]``. ``threshold_u8`` is the
smallest stored value that a probability at or above ``threshold`` can round to, less a hair for float error,
so ``to_uint8(p) >= threshold_u8(t)`` agrees with ``p >= t`` up to the 8-bit step.
"""

from __future__ import annotations

import numpy as np


def to_uint8(prob: np.ndarray) -> np.ndarray:
    """Probabilities in [0, 1] -> uint8 ``round(p * 255)`` (clipped; computed in the input's float type)."""
    return np.clip(np.rint(prob * 255.0), 0, 255).astype(np.uint8)


def threshold_u8(threshold: float) -> int:
    """The 8-bit value at or above which a stored probability counts as tumour for ``threshold``."""
    return int(np.ceil(threshold * 255.0 - 1e-6))
