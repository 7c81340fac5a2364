"""Read images from any of the formats teachseg accepts, with errors that name the file.

Images come back as ``(H, W, 3) uint8`` RGB, whatever the file held:

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

Masks are read by :mod:`teachseg.data.masks` (MATLAB ``.mat`` files by :mod:`teachseg.data.matfile`); the
pixel limit checked before decoding lives in :mod:`teachseg.data.limits`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from teachseg.data.limits import check_pixels, pillow_without_bomb_check
from teachseg.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
TIFF_SUFFIXES = {".tif", ".tiff"}
JPEG_SUFFIXES = {".jpg", ".jpeg"}

#: The fix suggested for a file that cannot be decoded.
FIX_UNREADABLE = "re-export or re-download the file, or remove it from the dataset folder"


def read_image(path: Path) -> np.ndarray:
    """Read an image as an ``(H, W, 3) uint8`` RGB array (see the module docstring for conversions).

    Raises:
        DataError: the file is missing, unreadable, truncated or has an unsupported channel count.
    """
    path = Path(path)
    array = read_raw(path)
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

        with pillow_without_bomb_check(), Image.open(path) as img:
            width, height = img.size
            return int(height), int(width)
    except FileNotFoundError:
        raise DataError(
            "image file not found", path=path, fix="check the path or run discovery again"
        ) from None
    except Exception as exc:
        raise DataError(
            f"cannot read image header ({error_reason(exc)})", path=path, fix=FIX_UNREADABLE
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


def read_raw(path: Path, palette_indices: bool = False) -> np.ndarray:
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
        raise DataError(f"cannot decode file ({error_reason(exc)})", path=path, fix=FIX_UNREADABLE) from None


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

    with pillow_without_bomb_check(), Image.open(path) as img:
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


def error_reason(exc: BaseException) -> str:
    """An exception as ``"TypeName: first line of its message"``, for error messages."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
