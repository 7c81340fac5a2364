"""Slide and large-image readers behind one small interface.

Whole-slide formats go through OpenSlide (openslide-python + openslide-bin), with tiffslide as the
fallback; large plain TIFF/PNG/JPEG through tifffile or Pillow. Regions are read in *level* pixel
coordinates and padded with white outside the image, so callers never special-case the borders.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from teachseg.errors import DataError

#: Formats that are always treated as whole slides.
SLIDE_SUFFIXES = (".svs", ".ndpi", ".mrxs", ".scn", ".vms", ".vmu", ".bif", ".svslide", ".tif", ".tiff")
#: Plain raster formats read whole through Pillow.
PLAIN_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
SUPPORTED_SUFFIXES = SLIDE_SUFFIXES + PLAIN_SUFFIXES
_FIX = (
    "give a readable slide (.svs, .ndpi, .mrxs, pyramidal .tif/.tiff, OME-TIFF) or image (.png, .jpg, .tif)"
)
#: A level whose size is further than this share (and a pixel) from level 0's size / its downsample is broken.
LEVEL_SIZE_TOLERANCE = 0.05
_PYRAMID_FIX = (
    "re-export the slide from the scanner's software or QuPath, or rebuild its pyramid "
    "(e.g. `vips tiffsave IN.tif OUT.tif --tile --pyramid`)"
)


@dataclass(frozen=True)
class Level:
    """One pyramid level: its index, size in pixels and downsample from level 0."""

    index: int
    width: int
    height: int
    downsample: float


class SlideReader:
    """Common interface: level geometry, resolution and region reads (uint8 RGB, level coordinates)."""

    backend = "none"

    def __init__(self, path: Path, levels: list[Level], mpp: float | None, suffix_slide: bool):
        self.path = path
        self.levels = levels
        self.mpp = mpp  # level 0, micrometres per pixel; None when the file does not say
        self.is_slide_format = suffix_slide

    @property
    def dimensions(self) -> tuple[int, int]:
        """Level-0 (width, height)."""
        return self.levels[0].width, self.levels[0].height

    def level_mpp(self, level: int) -> float | None:
        """Microns per pixel at ``level`` (None when the slide records no resolution)."""
        return None if self.mpp is None else self.mpp * self.levels[level].downsample

    def _read(self, level: int, x: int, y: int, w: int, h: int) -> np.ndarray:
        raise NotImplementedError

    def read(self, level: int, x: int, y: int, w: int, h: int) -> np.ndarray:
        """(h, w, 3) uint8 RGB of the region at (x, y) in ``level`` pixels; white outside the image."""
        lv = self.levels[level]
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + w, lv.width), min(y + h, lv.height)
        if x0 == x and y0 == y and x1 == x + w and y1 == y + h:
            return self._read_checked(level, x, y, w, h)
        out = np.full((h, w, 3), 255, dtype=np.uint8)
        if x1 > x0 and y1 > y0:
            out[y0 - y : y1 - y, x0 - x : x1 - x] = self._read_checked(level, x0, y0, x1 - x0, y1 - y0)
        return out

    def _read_checked(self, level: int, x: int, y: int, w: int, h: int) -> np.ndarray:
        try:
            return self._read(level, x, y, w, h)
        except DataError:
            raise
        except Exception as exc:
            raise DataError(
                f"cannot read a region at level {level}, x={x}, y={y} ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:120] if str(exc) else ''}); the file may be truncated or corrupt",
                path=self.path,
                fix="re-export or re-copy the slide",
            ) from None

    def thumbnail(self, max_side: int = 2048) -> tuple[np.ndarray, float]:
        """A block-averaged RGB thumbnail no larger than ``max_side`` and its downsample from level 0.

        Read band by band from the smallest level that is still at least ``max_side`` wide, so memory
        stays bounded even for single-level images.
        """
        level = len(self.levels) - 1
        for lv in self.levels:
            if max(lv.width, lv.height) >= max_side:
                level = lv.index
        lv = self.levels[level]
        k = max(1, math.ceil(max(lv.width, lv.height) / max_side))
        tw, th = max(1, lv.width // k), max(1, lv.height // k)
        thumb = np.empty((th, tw, 3), dtype=np.uint8)
        # blocks of about 512 x 4096 level pixels keep memory bounded whatever the level's size
        band, chunk = max(1, 512 // k) * k, max(1, 4096 // k) * k
        for y0 in range(0, th * k, band):
            rows = min(band, th * k - y0)
            for x0 in range(0, tw * k, chunk):
                cols = min(chunk, tw * k - x0)
                small = block_mean(self.read(level, x0, y0, cols, rows), k)
                thumb[y0 // k : (y0 + rows) // k, x0 // k : (x0 + cols) // k] = small
        return thumb, lv.downsample * k

    def close(self) -> None:  # noqa: B027  (optional for subclasses)
        pass

    def __enter__(self) -> SlideReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def block_mean(image: np.ndarray, k: int) -> np.ndarray:
    """The mean of each ``k`` x ``k`` block of a uint8 (H, W, C) image whose sides are multiples of ``k``,
    rounded to the nearest integer (OpenCV's area resampling: exact block means at an integer factor)."""
    import cv2

    if k == 1:
        return image
    h, w = image.shape[0] // k, image.shape[1] // k
    return cv2.resize(np.ascontiguousarray(image), (w, h), interpolation=cv2.INTER_AREA).reshape(h, w, -1)


def _rgba_to_rgb(rgba: np.ndarray) -> np.ndarray:
    if rgba.ndim == 2:
        return np.repeat(rgba[..., None], 3, axis=-1)
    if rgba.shape[-1] == 3:
        return rgba
    rgb, a = rgba[..., :3], rgba[..., 3:4]
    if a.min() == 255:
        return np.ascontiguousarray(rgb)
    af = a.astype(np.float32) / 255.0
    return np.rint(rgb * af + 255.0 * (1.0 - af)).astype(np.uint8)


def _parse_mpp(value: object) -> float | None:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


class OpenSlideReader(SlideReader):
    """Slide reader backed by OpenSlide (SVS, NDPI, MRXS, ...)."""

    backend = "openslide"

    def __init__(self, path: Path):
        import openslide

        self._slide = openslide.OpenSlide(str(path))
        s = self._slide
        levels = [
            Level(i, int(w), int(h), float(d))
            for i, ((w, h), d) in enumerate(zip(s.level_dimensions, s.level_downsamples, strict=True))
        ]
        mpp = _parse_mpp(s.properties.get(openslide.PROPERTY_NAME_MPP_X))
        super().__init__(path, levels, mpp, True)

    def _read(self, level: int, x: int, y: int, w: int, h: int) -> np.ndarray:
        d = self.levels[level].downsample
        img = self._slide.read_region((int(round(x * d)), int(round(y * d))), level, (w, h))
        return _rgba_to_rgb(np.asarray(img))

    def close(self) -> None:
        self._slide.close()


class TiffSlideReader(SlideReader):
    """Slide reader backed by tiffslide (pure Python: TIFF and SVS without the OpenSlide library)."""

    backend = "tiffslide"

    def __init__(self, path: Path):
        import tiffslide

        self._slide = tiffslide.TiffSlide(str(path))
        s = self._slide
        levels = [
            Level(i, int(w), int(h), float(d))
            for i, ((w, h), d) in enumerate(zip(s.level_dimensions, s.level_downsamples, strict=True))
        ]
        mpp = _parse_mpp(s.properties.get("tiffslide.mpp-x"))
        super().__init__(path, levels, mpp, True)

    def _read(self, level: int, x: int, y: int, w: int, h: int) -> np.ndarray:
        d = self.levels[level].downsample
        arr = self._slide.read_region((int(round(x * d)), int(round(y * d))), level, (w, h), as_array=True)
        return _rgba_to_rgb(np.asarray(arr))

    def close(self) -> None:
        self._slide.close()


class ArrayReader(SlideReader):
    """A single-level image held in memory (plain PNG/JPEG/TIFF, or an array given directly)."""

    backend = "array"

    def __init__(self, array: np.ndarray, path: Path | None = None, mpp: float | None = None):
        if array.ndim == 2:
            array = np.repeat(array[..., None], 3, axis=-1)
        if array.dtype != np.uint8:
            array = _to_uint8(array)
        self._array = (
            _rgba_to_rgb(array[..., :4]) if array.shape[-1] >= 3 else np.repeat(array[..., :1], 3, -1)
        )
        h, w = self._array.shape[:2]
        super().__init__(path or Path("<array>"), [Level(0, w, h, 1.0)], mpp, False)

    def _read(self, level: int, x: int, y: int, w: int, h: int) -> np.ndarray:
        return self._array[y : y + h, x : x + w]


def _to_uint8(a: np.ndarray) -> np.ndarray:
    if np.issubdtype(a.dtype, np.floating):
        hi = 1.0 if float(np.nanmax(a)) <= 1.0 else 255.0
        return np.clip(a / hi * 255.0, 0, 255).astype(np.uint8)
    hi = float(a.max()) if a.size else 1.0
    if hi <= 255:
        return a.astype(np.uint8)
    return (a.astype(np.float64) / hi * 255.0).astype(np.uint8)


def _read_plain(path: Path) -> ArrayReader:
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        with tifffile.TiffFile(path) as tf:
            arr = tf.pages[0].asarray()
            mpp = _tiff_mpp(tf.pages[0])
        if arr.ndim == 3 and arr.shape[0] in (3, 4) and arr.shape[-1] not in (3, 4):
            arr = np.moveaxis(arr, 0, -1)
        return ArrayReader(arr, path, mpp)
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # large plain images are expected here
    with Image.open(path) as im:
        return ArrayReader(np.asarray(im.convert("RGB")), path)


def _tiff_mpp(page: object) -> float | None:
    tags = page.tags  # type: ignore[attr-defined]
    try:
        unit = int(tags["ResolutionUnit"].value)
        num, den = tags["XResolution"].value
    except (KeyError, TypeError, ValueError):
        return None
    per_unit = num / den if den else 0
    if per_unit <= 0:
        return None
    um = {2: 25400.0, 3: 10000.0}.get(unit)
    return um / per_unit if um else None


def open_slide(path: str | Path) -> SlideReader:
    """Open a slide or image with the first reader that accepts it (OpenSlide, tiffslide, tifffile, Pillow)."""
    path = Path(path)
    if not path.exists():
        raise DataError("input not found", path=path, fix="check the path")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DataError(f"unsupported file type '{suffix}'", path=path, fix=_FIX)
    errors: list[str] = []
    if suffix in SLIDE_SUFFIXES:
        for cls in (OpenSlideReader, TiffSlideReader):
            try:
                reader: SlideReader = cls(path)
            except Exception as exc:  # each library raises its own error types
                errors.append(f"{cls.backend}: {type(exc).__name__}")
                continue
            if reader.levels and reader.levels[0].width > 0 and reader.levels[0].height > 0:
                # A plain TIFF opens in tiffslide too; it counts as a slide when it has a whole-slide suffix,
                # a pyramid or a resolution, so ordinary TIFF images (frames, tiles) get ordinary outputs.
                reader.is_slide_format = (
                    suffix not in (".tif", ".tiff") or len(reader.levels) > 1 or reader.mpp is not None
                )
                try:
                    check_levels(reader.levels, path)
                    if suffix in (".tif", ".tiff"):
                        _check_tiff_order(path)
                except DataError:
                    reader.close()
                    raise
                return reader
    try:
        return _read_plain(path)
    except Exception as exc:
        errors.append(f"plain: {type(exc).__name__}: {str(exc).splitlines()[0][:80] if str(exc) else ''}")
    raise DataError(
        f"cannot open the file ({'; '.join(errors)}); it may be corrupt, truncated or of an unsupported kind",
        path=path,
        fix=_FIX,
    )


def check_levels(levels: list[Level], path: Path) -> None:
    """Raise a :class:`DataError` naming ``path`` when the pyramid's geometry is inconsistent.

    Every level must have a size, downsamples must grow from 1 at level 0, no level may be larger than level 0,
    and each level's size must be level 0's divided by its downsample (within :data:`LEVEL_SIZE_TOLERANCE`).
    """

    def bad(what: str) -> DataError:
        return DataError(f"inconsistent pyramid levels: {what}", path=path, fix=_PYRAMID_FIX)

    for lv in levels:
        if lv.width <= 0 or lv.height <= 0:
            raise bad(f"level {lv.index} has zero size ({lv.width}x{lv.height} px)")
        if not (math.isfinite(lv.downsample) and lv.downsample > 0):
            raise bad(f"level {lv.index} has no valid downsample ({lv.downsample})")
    w0, h0 = levels[0].width, levels[0].height
    for prev, lv in zip(levels, levels[1:], strict=False):
        if lv.width > w0 or lv.height > h0:
            raise bad(f"level {lv.index} ({lv.width}x{lv.height} px) is larger than level 0 ({w0}x{h0} px)")
        if lv.downsample <= prev.downsample:
            raise bad(
                f"level downsamples do not increase (level {prev.index}: {prev.downsample:g}, "
                f"level {lv.index}: {lv.downsample:g})"
            )
        ew, eh = w0 / lv.downsample, h0 / lv.downsample
        if any(
            abs(got - want) > max(LEVEL_SIZE_TOLERANCE * want, 1.0)
            for got, want in ((lv.width, ew), (lv.height, eh))
        ):
            raise bad(
                f"level {lv.index} is {lv.width}x{lv.height} px, but level 0 ({w0}x{h0} px) at its downsample "
                f"{lv.downsample:g} makes {ew:.0f}x{eh:.0f} px"
            )


def _check_tiff_order(path: Path) -> None:
    """A generic TIFF's reduced-resolution pages must be smaller than its first page (its level 0).

    OpenSlide sorts a generic TIFF's levels by size, so a reduced page larger than the first would silently
    become level 0 while the resolution is the first page's.
    """
    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            first = tf.pages.first
            w0, h0 = int(first.imagewidth), int(first.imagelength)
            for index, page in enumerate(tf.pages[1:], 1):
                if not getattr(page, "is_reduced", False):
                    continue
                w, h = int(page.imagewidth), int(page.imagelength)  # type: ignore[union-attr]
                if w > w0 or h > h0:
                    raise DataError(
                        f"inconsistent pyramid levels: reduced-resolution page {index} ({w}x{h} px) is larger "
                        f"than the first page, level 0 ({w0}x{h0} px)",
                        path=path,
                        fix=_PYRAMID_FIX,
                    )
    except DataError:
        raise
    except Exception:  # tifffile cannot parse it: the readers that opened it know better
        return


def choose_level(reader: SlideReader, target_mpp: float | None = None, level: int | None = None) -> int:
    """The pyramid level to predict at.

    An explicit ``level`` wins; otherwise the level whose resolution is closest (in log scale) to
    ``target_mpp``; level 0 when either the target or the slide's resolution is unknown.
    """
    if level is not None:
        if not 0 <= level < len(reader.levels):
            raise DataError(
                f"level {level} does not exist (the slide has {len(reader.levels)} levels)",
                path=reader.path,
                fix=f"give --level between 0 and {len(reader.levels) - 1}",
            )
        return level
    if target_mpp is None or reader.mpp is None:
        return 0
    best = min(reader.levels, key=lambda lv: abs(math.log(reader.mpp * lv.downsample / target_mpp)))  # type: ignore[operator]
    return best.index
