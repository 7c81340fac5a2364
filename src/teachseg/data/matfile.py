"""Read MATLAB ``.mat`` masks, v5 (scipy) and v7.3 (HDF5, h5py), with errors that name the file.

The mask is one variable of the file, named by ``mat_variable`` or chosen automatically as the largest 2-D
numeric array. MAT v5 files are walked tag by tag before scipy parses them, since scipy's reader crashes the
process on some corrupt files.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from teachseg.data.imageio import FIX_UNREADABLE, error_reason
from teachseg.data.limits import check_pixels, max_image_pixels
from teachseg.errors import DataError

_FIX_MAT_VARIABLE = "set data.mat_variable (or --mat-variable) to the variable that holds the mask"


def mat_variables(path: Path) -> dict[str, tuple[int, ...]]:
    """Names and shapes (MATLAB order) of the numeric arrays in a ``.mat`` file."""
    return {name: shape for name, (shape, _) in _mat_entries(Path(path)).items()}


def read_mat_array(path: Path, variable: str | None = None) -> np.ndarray:
    """Read a 2-D numeric array from a MATLAB file (v5 or v7.3), in MATLAB's (row, column) order.

    Args:
        path: the ``.mat`` file.
        variable: the variable to read; ``None`` picks the largest 2-D numeric array (singleton
            dimensions squeezed), ties broken by name.
    """
    path = Path(path)
    entries = _mat_entries(path)
    listing = ", ".join(f"{n} {_shape_str(s)}" for n, (s, _) in sorted(entries.items())) or "none"
    if variable is not None:
        if variable not in entries:
            raise DataError(
                f"variable {variable!r} not found (variables present: {listing})",
                path=path,
                fix="set data.mat_variable (or --mat-variable) to one of the variables present",
            )
        _check_mat_size(path, entries[variable][0])
        array = np.squeeze(_load_entry(path, entries[variable][1]))
        if array.ndim != 2:
            raise DataError(
                f"variable {variable!r} has shape {_shape_str(entries[variable][0])}, not a 2-D mask",
                path=path,
                fix=_FIX_MAT_VARIABLE,
            )
        return array
    candidates = [
        (int(np.prod(shape)), name)
        for name, (shape, _) in entries.items()
        if len([d for d in shape if d != 1]) == 2
    ]
    if not candidates:
        raise DataError(
            f"no 2-D numeric array in this .mat file (variables: {listing})",
            path=path,
            fix=_FIX_MAT_VARIABLE,
        )
    _, best = min(candidates, key=lambda c: (-c[0], c[1]))
    _check_mat_size(path, entries[best][0])
    return np.squeeze(_load_entry(path, entries[best][1]))


def _load_entry(path: Path, loader: Any) -> np.ndarray:
    # v7.3 variables are read lazily: a corrupt chunk only fails here, after the listing succeeded
    try:
        return np.asarray(loader())
    except Exception as exc:
        raise DataError(
            f"cannot read MATLAB file ({error_reason(exc)})", path=path, fix=FIX_UNREADABLE
        ) from None


def _check_mat_size(path: Path, shape: tuple[int, ...]) -> None:
    dims = sorted(int(d) for d in (*shape, 1, 1))
    check_pixels(path, int(np.prod(dims[:-1], dtype=np.float64)), dims[-1])


def _mat_entries(path: Path) -> dict[str, tuple[tuple[int, ...], Any]]:
    """name -> (shape in MATLAB order, loader) for every numeric array in the file."""
    if not path.is_file():
        raise DataError("mask file not found", path=path, fix="check the path or run discovery again")
    import h5py

    try:
        if h5py.is_hdf5(path):
            return _mat73_entries(path)
        return _mat5_entries(path)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(
            f"cannot read MATLAB file ({error_reason(exc)})", path=path, fix=FIX_UNREADABLE
        ) from None


#: MAT v5 data types (miINT8 .. miUTF32, reserved codes 8, 10 and 11 left out)
_MAT5_TYPES = {1, 2, 3, 4, 5, 6, 7, 9, 12, 13, 14, 15, 16, 17, 18}
_MI_MATRIX, _MI_COMPRESSED = 14, 15


def _check_mat5(path: Path, data: bytes) -> None:
    """Walk a MAT v5 file's element tags before scipy parses it.

    scipy's reader crashes the process (segmentation fault) on some corrupt tags, e.g. an unknown data type
    inside a matrix; a crash cannot be caught, so such files are refused here with a :class:`DataError`.
    """
    if len(data) < 128:
        raise ValueError("shorter than the 128-byte MAT v5 header")
    order = {b"IM": "<", b"MI": ">"}.get(data[126:128])
    if order is None:
        raise ValueError("not a MAT v5 file (no endian indicator)")
    budget = [16 * max_image_pixels() + (1 << 20)]  # decompressed bytes allowed in all
    _walk_mat5(data, 128, len(data), order, budget, depth=0)


def _walk_mat5(data: bytes, start: int, end: int, order: str, budget: list[int], depth: int) -> None:
    import struct
    import zlib

    if depth > 32:
        raise ValueError("MAT v5 elements nested too deeply")
    pos = start
    while pos < end:
        if end - pos < 8:
            if depth == 0 and not data[pos:end].strip(b"\0"):
                return  # padding at the end of the file
            raise ValueError(f"truncated element tag at byte {pos}")
        kind, nbytes = struct.unpack(order + "II", data[pos : pos + 8])
        if kind >> 16:  # small data element: type and size share the first word, data in the second
            kind, nbytes = kind & 0xFFFF, kind >> 16
            if kind not in _MAT5_TYPES or nbytes > 4:
                raise ValueError(f"bad small element tag at byte {pos}")
            pos += 8
            continue
        if kind not in _MAT5_TYPES:
            raise ValueError(f"unknown data type {kind} at byte {pos}")
        body = pos + 8
        if nbytes > end - body:
            raise ValueError(f"element at byte {pos} declares {nbytes} bytes, past the end of its container")
        if kind == _MI_COMPRESSED:
            inflater = zlib.decompressobj()
            inner = inflater.decompress(data[body : body + nbytes], budget[0] + 1)
            budget[0] -= len(inner)
            if budget[0] < 0:
                raise ValueError("compressed variable expands beyond the pixel limit")
            _walk_mat5(inner, 0, len(inner), order, budget, depth + 1)
            pos = body + nbytes
            continue
        if kind == _MI_MATRIX:
            _walk_mat5(data, body, body + nbytes, order, budget, depth + 1)
        pos = body + nbytes + ((-nbytes) % 8 if depth > 0 or kind != _MI_COMPRESSED else 0)
    if pos > end and depth > 0:
        raise ValueError("element padding runs past the end of its matrix")


def _mat5_entries(path: Path) -> dict[str, tuple[tuple[int, ...], Any]]:
    import scipy.io

    _check_mat5(path, path.read_bytes())
    content = scipy.io.loadmat(path)
    entries: dict[str, tuple[tuple[int, ...], Any]] = {}
    for name, value in content.items():
        if name.startswith("__") or not isinstance(value, np.ndarray):
            continue
        if value.dtype == bool or np.issubdtype(value.dtype, np.number):
            entries[name] = (tuple(value.shape), lambda v=value: v)
    return entries


def _mat73_entries(path: Path) -> dict[str, tuple[tuple[int, ...], Any]]:
    import h5py

    entries: dict[str, tuple[tuple[int, ...], Any]] = {}
    with h5py.File(path, "r") as fh:

        def visit(name: str, obj: Any) -> None:
            if not isinstance(obj, h5py.Dataset) or name.startswith("#"):
                return
            if obj.dtype.kind not in "biuf":
                return
            # HDF5 stores MATLAB's column-major arrays transposed: reverse the axes back.
            entries[name] = (tuple(reversed(obj.shape)), lambda n=name: _load_h5(path, n))

        fh.visititems(visit)
    return entries


def _load_h5(path: Path, name: str) -> np.ndarray:
    import h5py

    with h5py.File(path, "r") as fh:
        return np.asarray(fh[name][()]).T


def _shape_str(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape) if shape else "scalar"
