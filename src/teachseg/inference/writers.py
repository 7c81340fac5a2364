"""Outputs: pyramidal probability TIFF, QuPath GeoJSON, overlay thumbnail. Every file is written atomically."""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from teachseg.inference.blending import RawRaster
from teachseg.io import atomic_path, write_png, write_text

TUMOUR_CLASS = "Tumor"  # QuPath's built-in class name
TUMOUR_COLOUR = (200, 0, 0)
AREA_UM2 = "Area \u00b5m^2"  # QuPath's measurement name (micro sign, as QuPath writes it)
AREA_PX2 = "Area px^2"
#: namespace of the GeoJSON feature ids (a fixed, random UUID: ids cannot collide with other tools' uuid5)
FEATURE_NAMESPACE = uuid.UUID("6f1c8e2a-9b4d-5c3e-8a71-2d54b0f3c9e1")


# ---------------------------------------------------------------- pyramid


def build_pyramid(base: RawRaster, workdir: Path, min_side: int = 256, band: int = 256) -> list[RawRaster]:
    """Halve ``base`` repeatedly (2x2 mean, streamed in row bands) until it fits in ``min_side`` pixels."""
    levels = [base]
    while max(levels[-1].height, levels[-1].width) > min_side:
        prev = levels[-1]
        h, w = math.ceil(prev.height / 2), math.ceil(prev.width / 2)
        nxt = RawRaster(workdir / f"level{len(levels)}.u8", h, w)
        for y in range(0, h, band):
            rows = prev.read_rows(2 * y, 2 * min(y + band, h))
            if rows.shape[0] % 2:
                rows = np.concatenate([rows, rows[-1:]], axis=0)
            if rows.shape[1] % 2:
                rows = np.concatenate([rows, rows[:, -1:]], axis=1)
            small = (
                rows.reshape(rows.shape[0] // 2, 2, rows.shape[1] // 2, 2).astype(np.uint16).sum(axis=(1, 3))
            )
            nxt.write_rows(y, ((small + 2) // 4).astype(np.uint8))
        levels.append(nxt)
    return levels


def _tiles(raster: RawRaster, tile: int) -> Iterator[np.ndarray]:
    for y in range(0, raster.height, tile):
        rows = raster.read_rows(y, y + tile)
        pad_h = tile - rows.shape[0]
        pad_w = (-raster.width) % tile
        if pad_h or pad_w:
            rows = np.pad(rows, ((0, pad_h), (0, pad_w)))
        for x in range(0, rows.shape[1], tile):
            yield rows[:, x : x + tile]


def write_pyramid_tiff(
    path: str | Path,
    levels: list[RawRaster],
    mpp: float | tuple[float, float] | None,
    tile: int = 256,
    description: str = "",
) -> Path:
    """Write a tiled, zlib-compressed, 8-bit pyramidal TIFF (one IFD per level) that OpenSlide reads.

    ``mpp`` is the resolution of ``levels[0]`` in micrometres per pixel, one value or ``(x, y)``; it is
    stored per axis as pixels per cm (``levels[0].width / level.width`` coarser on the lower levels).
    """
    import tifffile

    mpp_x, mpp_y = (mpp, mpp) if not isinstance(mpp, tuple) else mpp
    raw_bytes = sum(lv.height * lv.width for lv in levels)
    with atomic_path(path, suffix=".tif") as tmp, tifffile.TiffWriter(tmp, bigtiff=raw_bytes > 2**31) as tw:
        for i, lv in enumerate(levels):
            kwargs: dict[str, Any] = {}
            if mpp_x and mpp_y:
                ppcm_x = 1e4 / (mpp_x * levels[0].width / lv.width)
                ppcm_y = 1e4 / (mpp_y * levels[0].height / lv.height)
                kwargs.update(resolution=(ppcm_x, ppcm_y), resolutionunit="CENTIMETER")
            tw.write(
                _tiles(lv, tile),
                shape=(lv.height, lv.width),
                dtype=np.uint8,
                tile=(tile, tile),
                photometric="minisblack",
                compression="zlib",
                subfiletype=1 if i else 0,
                description=description if i == 0 else None,
                metadata=None,
                **kwargs,
            )
    return Path(path)


def overlay_scale(
    slide_size: tuple[int, int], raster_size: tuple[int, int], mpp0: float | None
) -> tuple[tuple[float, float], tuple[float, float] | None]:
    """Level-0 pixels per raster pixel (x, y) of a raster spanning the whole slide, and its exact um/px.

    The raster's resolution tags carry this um/px, so that QuPath and OpenSlide, which place an image by its
    physical size, lay it over the slide's level-0 extent without manual scaling: ``width x mpp`` of the
    raster equals ``width x mpp`` of the slide on each axis, whatever the rounding of the raster's size.
    """
    (w0, h0), (w, h) = slide_size, raster_size
    ds = (w0 / w, h0 / h)
    return ds, None if not mpp0 else (mpp0 * ds[0], mpp0 * ds[1])


def pick_level(levels: list[RawRaster], max_side: int) -> tuple[RawRaster, float]:
    """The first pyramid level no larger than ``max_side`` and its downsample from ``levels[0]``."""
    lv = next((r for r in levels if max(r.height, r.width) <= max_side), levels[-1])
    return lv, levels[0].width / lv.width


def read_level_for(levels: list[RawRaster], max_side: int) -> tuple[np.ndarray, float]:
    """The first pyramid level no larger than ``max_side``, whole, and its downsample from ``levels[0]``."""
    lv, ds = pick_level(levels, max_side)
    return lv.read_rows(0, lv.height), ds


def threshold_level(
    levels: list[RawRaster], max_side: int, thr_u8: int, band: int = 256
) -> tuple[np.ndarray, float]:
    """A uint8 0/1 mask (probability >= ``thr_u8``) of the first level no larger than ``max_side``, built in bands."""
    lv, ds = pick_level(levels, max_side)
    mask = np.empty((lv.height, lv.width), dtype=np.uint8)
    for y in range(0, lv.height, band):
        rows = lv.read_rows(y, y + band)
        np.greater_equal(rows, thr_u8, out=mask[y : y + rows.shape[0]].view(bool))
    return mask, ds


# ---------------------------------------------------------------- GeoJSON


def geojson_features(
    polygons: list[Any],
    name: str = TUMOUR_CLASS,
    colour: tuple[int, int, int] = TUMOUR_COLOUR,
    mpp: float | None = None,
    source: str = "",
) -> dict:
    """A FeatureCollection of annotations as QuPath exports and imports them (level-0 pixel coordinates).

    Each polygonal part is one feature with ``objectType: annotation``, a ``classification`` (name and RGB
    colour) and ``measurements``: ``Area µm^2`` when the slide's level-0 ``mpp`` is known (QuPath's own
    name for it), else ``Area px^2``. Feature ids are UUIDs derived from ``source`` (e.g. the slide's name),
    the feature's position and its geometry, so the same prediction always writes the same file and a rerun
    or a cluster run is byte-identical to the first, while ids stay unique within and across slides.
    """
    from shapely.geometry import mapping

    from teachseg.wsi.polygons import polygonal_parts

    features = []
    for i, p in enumerate(part for g in polygons for part in polygonal_parts(g)):
        geom = mapping(p)
        geom["coordinates"] = [[[round(x, 2), round(y, 2)] for x, y in r] for r in geom["coordinates"]]
        area = {AREA_UM2: round(p.area * mpp**2, 3)} if mpp else {AREA_PX2: round(p.area, 2)}
        features.append(
            {
                "type": "Feature",
                "id": feature_id(source, i, geom),
                "geometry": geom,
                "properties": {
                    "objectType": "annotation",
                    "classification": {"name": name, "color": list(colour)},
                    "isLocked": False,
                    "measurements": area,
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def feature_id(source: str, index: int, geometry: dict) -> str:
    """A UUID (version 5) for feature ``index`` of ``source`` with this (rounded) geometry."""
    digest = hashlib.sha256(json.dumps(geometry, separators=(",", ":")).encode()).hexdigest()
    return str(uuid.uuid5(FEATURE_NAMESPACE, f"{source}\x00{index}\x00{digest}"))


def write_geojson(path: str | Path, collection: dict) -> Path:
    """Write a GeoJSON FeatureCollection compactly in UTF-8 (as QuPath exports), atomically."""
    # UTF-8 with the micro sign as it is, as QuPath writes its own exports
    return write_text(path, json.dumps(collection, separators=(",", ":"), ensure_ascii=False) + "\n")


# ---------------------------------------------------------------- overlay


def overlay(
    rgb: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int] = (0, 200, 60), alpha: float = 0.25
) -> np.ndarray:
    """``rgb`` with the outline of ``mask`` drawn over it (and the inside lightly tinted)."""
    from scipy import ndimage as ndi

    out = rgb[..., :3].astype(np.float32).copy()
    m = mask.astype(bool)
    col = np.asarray(colour, dtype=np.float32)
    out[m] = (1 - alpha) * out[m] + alpha * col
    thick = max(1, round(max(m.shape) / 600))
    edge = m & ~ndi.binary_erosion(m, iterations=thick, border_value=0)
    if thick > 1:
        edge = ndi.binary_dilation(edge, iterations=thick // 2)
    out[edge] = col
    return np.clip(out, 0, 255).astype(np.uint8)


def resize_to(array: np.ndarray, width: int, height: int, nearest: bool = False) -> np.ndarray:
    """``array`` resized to ``width`` x ``height`` (bilinear, or nearest for masks); as is at that size."""
    from PIL import Image

    if array.shape[1] == width and array.shape[0] == height:
        return array
    im = Image.fromarray(np.ascontiguousarray(array))
    return np.asarray(
        im.resize((width, height), Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR)
    )


def write_overlay(path: str | Path, rgb: np.ndarray, mask: np.ndarray) -> Path:
    """Write ``rgb`` with ``mask`` drawn over it as a PNG (fast zlib level: a photographic image gains little
    from more)."""
    return write_png(path, overlay(rgb, mask), compress_level=1)
