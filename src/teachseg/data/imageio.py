"""Read images and masks from any of the formats teachseg accepts, with errors that name the file.

Images come back as ``(H, W, 3) uint8`` RGB and masks as ``(H, W) bool``, whatever the file held:

* greyscale is repeated into three channels, RGBA/LA drop their alpha (no compositing), palette images are
  expanded through their palette;
* 16-bit (or wider) images are scaled to 8 bit by the **dtype range** (``value * 255 / 65535`` for
  ``uint16``), so that images of one dataset keep comparable brightness. Only when an image uses less than
  1/16 of that range (e.g. 12-bit or 10-bit data stored in 16-bit words, maximum below 4096) is it
  **min-max** stretched instead, since scaling by the dtype range would leave it nearly black. Float
  images in ``[0, 1]`` are multiplied by 255; other floats and signed integers are min-max stretched;
* TIFF files are read with :mod:`tifffile` (first series, full resolution), everything else with Pillow,
  fully decoded: a truncated PNG or JPEG raises :class:`~teachseg.errors.DataError` instead of being
  silently padded with grey.

A mask pixel is foreground when it is non-zero: 0/1 and 0/255 masks, palette PNGs (index > 0),
instance and label maps (label > 0) and RGB masks (any channel > 0) all work. JPEG masks are the
exception: compression rings around edges make "non-zero" meaningless, so a JPEG mask pixel is foreground
when it exceeds half the mask's maximum. MATLAB ``.mat`` masks (v5 via scipy, v7.3 via h5py) hold the mask
in one variable, named by ``mat_variable`` or chosen automatically as the largest 2-D numeric array.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from teachseg.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
MASK_SUFFIXES = IMAGE_SUFFIXES | {".mat"}
TIFF_SUFFIXES = {".tif", ".tiff"}
JPEG_SUFFIXES = {".jpg", ".jpeg"}

#: Images (and ``.mat`` masks) declaring more pixels than this are refused before decoding, so that a
#: corrupt or hostile header cannot exhaust memory; ``TEACHSEG_MAX_IMAGE_PIXELS`` overrides it.
MAX_IMAGE_PIXELS = 250_000_000
MAX_PIXELS_ENV = "TEACHSEG_MAX_IMAGE_PIXELS"

_FIX_UNREADABLE = "re-export or re-download the file, or remove it from the dataset folder"
_FIX_MAT_VARIABLE = "set data.mat_variable (or --mat-variable) to the variable that holds the mask"


# ----------------------------------------------------------------------------------------------- limits


def max_image_pixels() -> int:
    """The pixel limit in effect: ``TEACHSEG_MAX_IMAGE_PIXELS`` when set, else :data:`MAX_IMAGE_PIXELS`."""
    text = os.environ.get(MAX_PIXELS_ENV, "").strip().replace("_", "")
    if not text:
        return MAX_IMAGE_PIXELS
    try:
        value = int(float(text))
    except ValueError:
        value = 0
    if value <= 0:
        raise DataError(
            f"{MAX_PIXELS_ENV}={os.environ[MAX_PIXELS_ENV]!r} is not a positive number of pixels",
            fix=f"set {MAX_PIXELS_ENV} to e.g. 250000000, or unset it",
        )
    return value


def check_pixels(path: Path, height: int, width: int) -> None:
    """Refuse an image whose header declares more than :func:`max_image_pixels` pixels."""
    limit = max_image_pixels()
    if height * width > limit:
        raise DataError(
            f"declares {height}x{width} (HxW) = {height * width} pixels, more than the limit of {limit} pixels",
            path=path,
            fix=f"if the image is genuine, raise the limit with {MAX_PIXELS_ENV}; else re-export the file",
        )


@contextmanager
def _pillow_without_bomb_check() -> Iterator[None]:
    # teachseg checks the declared size itself (check_pixels), with its own configurable limit
    from PIL import Image

    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


# ----------------------------------------------------------------------------------------------- images


def read_image(path: Path) -> np.ndarray:
    """Read an image as an ``(H, W, 3) uint8`` RGB array (see the module docstring for conversions).

    Raises:
        DataError: the file is missing, unreadable, truncated or has an unsupported channel count.
    """
    path = Path(path)
    array = _read_raw(path)
    return to_rgb8(array, path)


def image_shape(path: Path) -> tuple[int, int]:
    """``(H, W)`` of an image, read from the file header without decoding the pixels where possible."""
    path = Path(path)
    try:
        if path.suffix.lower() in TIFF_SUFFIXES:
            import tifffile

            with tifffile.TiffFile(path) as tif:
                page = tif.pages.first
                return int(page.imagelength), int(page.imagewidth)  # type: ignore[union-attr]
        from PIL import Image

        with _pillow_without_bomb_check(), Image.open(path) as img:
            width, height = img.size
            return int(height), int(width)
    except FileNotFoundError:
        raise DataError(
            "image file not found", path=path, fix="check the path or run discovery again"
        ) from None
    except Exception as exc:
        raise DataError(
            f"cannot read image header ({_reason(exc)})", path=path, fix=_FIX_UNREADABLE
        ) from None


def to_rgb8(array: np.ndarray, path: Path | str = "<array>") -> np.ndarray:
    """Convert a decoded ``(H, W)`` or ``(H, W, C)`` array of any numeric dtype to ``(H, W, 3) uint8``."""
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        array = array[..., None]
    elif array.ndim == 3 and array.shape[-1] == 2:  # grey + alpha
        array = array[..., :1]
    elif array.ndim == 3 and array.shape[-1] in (3, 4):
        array = array[..., :3]
    else:
        raise DataError(
            f"unsupported image shape {tuple(array.shape)} (expected grey, RGB or RGBA)",
            path=path,
            fix="convert the image to an 8- or 16-bit greyscale or RGB PNG/TIFF",
        )
    array = _to_uint8(array)
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return np.ascontiguousarray(array)


def _to_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    if array.size == 0:
        return array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.unsignedinteger):
        top = float(np.iinfo(array.dtype).max)
        if float(array.max()) >= top / 16:
            return np.round(array.astype(np.float64) * (255.0 / top)).astype(np.uint8)
        return _minmax(array)
    if np.issubdtype(array.dtype, np.floating):
        finite = np.nan_to_num(array.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        if finite.min() >= 0.0 and finite.max() <= 1.0:
            return np.round(finite * 255.0).astype(np.uint8)
        return _minmax(finite)
    return _minmax(array)  # signed integers


def _minmax(array: np.ndarray) -> np.ndarray:
    data = array.astype(np.float64)
    lo, hi = float(data.min()), float(data.max())
    if hi <= lo:
        return np.zeros(array.shape, np.uint8)
    return np.round((data - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def _read_raw(path: Path, palette_indices: bool = False) -> np.ndarray:
    """Decode a raster file completely into a numpy array (no dtype or channel conversion).

    Palette images give their RGB colours, or their indices when ``palette_indices`` (masks).
    """
    try:
        if path.suffix.lower() in TIFF_SUFFIXES:
            return _read_tiff(path)
        return _read_pillow(path, palette_indices)
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError("file not found", path=path, fix="check the path or run discovery again") from None
    except Exception as exc:
        raise DataError(f"cannot decode file ({_reason(exc)})", path=path, fix=_FIX_UNREADABLE) from None


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        shape = tuple(tif.series[0].shape) if tif.series else tuple(tif.pages.first.shape)  # type: ignore[union-attr]
        height, width = sorted(int(d) for d in (*shape, 1, 1))[-2:]
        check_pixels(path, height, width)
        check_pixels(path, int(np.prod(shape, dtype=np.float64)) // 4, 1)  # stacks of many pages
        array = tif.series[0].asarray(level=0) if tif.series else tif.pages.first.asarray()  # type: ignore[union-attr]
    array = np.asarray(array)
    # Planar (C, H, W) TIFFs: move the few channels last.
    if array.ndim == 3 and array.shape[0] in (1, 2, 3, 4) and array.shape[-1] not in (1, 2, 3, 4):
        array = np.moveaxis(array, 0, -1)
    if array.ndim > 3:
        array = np.squeeze(array)
    return array


def _read_pillow(path: Path, palette_indices: bool = False) -> np.ndarray:
    from PIL import Image

    with _pillow_without_bomb_check(), Image.open(path) as img:
        check_pixels(path, img.size[1], img.size[0])
        img.load()  # decode everything now: truncated files raise here instead of later
        mode = img.mode
        if mode == "P" and palette_indices:
            return np.asarray(img)
        if mode == "P":
            return np.asarray(img.convert("RGBA" if "transparency" in img.info else "RGB"))
        if mode in ("CMYK", "YCbCr", "LAB", "HSV", "PA", "RGBX", "RGBa", "La"):
            return np.asarray(img.convert("RGB"))
        if mode == "1":
            return np.asarray(img, dtype=bool)
        if mode.startswith("I;16"):
            return np.asarray(img).astype(np.uint16)
        if mode == "I":
            # 16-bit PNGs decode to mode "I" (int32) in some Pillow versions; keep them unsigned 16-bit.
            arr = np.asarray(img)
            if arr.size and arr.min() >= 0 and arr.max() <= 65535:
                return arr.astype(np.uint16)
            return arr
        return np.asarray(img)


# ------------------------------------------------------------------------------------------------ masks


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
    array = _read_raw(path, palette_indices=True)
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


# ------------------------------------------------------------------------------------------------- .mat


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
        raise DataError(f"cannot read MATLAB file ({_reason(exc)})", path=path, fix=_FIX_UNREADABLE) from None


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
        raise DataError(f"cannot read MATLAB file ({_reason(exc)})", path=path, fix=_FIX_UNREADABLE) from None


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


# ------------------------------------------------------------------------------------------------ utils


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _hw(shape: Sequence[int]) -> str:
    return f"{shape[0]}x{shape[1]} (HxW)"


def _shape_str(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape) if shape else "scalar"
