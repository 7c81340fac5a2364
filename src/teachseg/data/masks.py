"""Read mask files (images or MATLAB ``.mat``) as ``(H, W) bool`` masks, with errors that name the file.

A mask pixel is foreground when it is non-zero: 0/1 and 0/255 masks, palette PNGs (index > 0),
instance and label maps (label > 0) and RGB masks (any channel > 0) all work. JPEG masks are the
exception: compression rings around edges make "non-zero" meaningless, so a JPEG mask pixel is foreground
when it exceeds half the mask's maximum. MATLAB ``.mat`` masks (v5 via scipy, v7.3 via h5py) hold the mask
in one variable, named by ``mat_variable`` or chosen automatically as the largest 2-D numeric array.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from teachseg.data.imageio import IMAGE_SUFFIXES, JPEG_SUFFIXES, read_raw
from teachseg.data.matfile import read_mat_array
from teachseg.errors import DataError

MASK_SUFFIXES = IMAGE_SUFFIXES | {".mat"}


def read_mask(
    paths: Sequence[Path],
    mat_variable: str | None = None,
    expected_shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """Read one or more mask files and OR them into a single ``(H, W) bool`` mask.

    Several files are BUSI's extra lesion masks (``X_mask.png``, ``X_mask_1.png``, ...).

    Args:
        paths: mask files (image formats or ``.mat``), all of one size.
        mat_variable: variable holding the mask in ``.mat`` files; ``None`` picks the largest 2-D array.
        expected_shape: ``(H, W)`` of the image the mask belongs to, checked when given.

    Raises:
        DataError: unreadable file, no usable ``.mat`` variable, or sizes that disagree.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("read_mask needs at least one path")
    merged: np.ndarray | None = None
    first = paths[0]
    for path in paths:
        mask = _read_one_mask(path, mat_variable)
        if merged is None:
            merged = mask
        elif mask.shape != merged.shape:
            raise DataError(
                f"mask size {_hw(mask.shape)} differs from {first.name} ({_hw(merged.shape)}), "
                "masks of one image must all have the same size",
                path=path,
                fix="re-export the masks at the image's size",
            )
        else:
            merged |= mask
    assert merged is not None
    if expected_shape is not None and tuple(merged.shape) != tuple(expected_shape):
        raise DataError(
            f"mask size {_hw(merged.shape)} does not match its image ({_hw(expected_shape)})",
            path=first,
            fix="re-export the mask at the image's size, or check that the mask belongs to this image",
        )
    return merged


def _read_one_mask(path: Path, mat_variable: str | None) -> np.ndarray:
    suffix = path.suffix.lower()
    if suffix == ".mat":
        return read_mat_array(path, mat_variable) > 0
    array = read_raw(path, palette_indices=True)
    if array.ndim == 3:
        channels = array.shape[-1]
        if channels in (2, 4):  # drop alpha
            array = array[..., : channels - 1]
        if suffix in JPEG_SUFFIXES:
            top = float(array.max()) if array.size else 0.0
            return np.asarray((array > top / 2).any(axis=-1)) if top > 0 else np.zeros(array.shape[:2], bool)
        return np.asarray((array > 0).any(axis=-1))
    if array.ndim != 2:
        raise DataError(
            f"unsupported mask shape {tuple(array.shape)} (expected a 2-D mask)",
            path=path,
            fix="save the mask as a single-channel PNG with 0 = background",
        )
    if suffix in JPEG_SUFFIXES:
        top = float(array.max()) if array.size else 0.0
        return np.asarray(array > top / 2) if top > 0 else np.zeros(array.shape, bool)
    return np.asarray(array > 0)


def _hw(shape: Sequence[int]) -> str:
    return f"{shape[0]}x{shape[1]} (HxW)"
