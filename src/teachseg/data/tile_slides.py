"""``teachseg data tile``: cut tissue tiles from a slide into the ``images/`` + ``masks/`` layout.

Tiles that meet an annotation (QuPath GeoJSON, level-0 pixel coordinates, holes kept) go to ``images/``
with their rasterised mask in ``masks/`` (0/255 PNG, same name); tiles that meet none go to ``unlabelled/``
for self-training.

**Regions to annotate** (``teachseg suggest`` on slides): when the GeoJSON holds annotations of class
``Annotate next``, tiles are cut *only inside them*, and every one is labelled: its mask is the tumour drawn
inside it (the other classes' polygons, as without regions; nothing drawn means no tumour there). A region's
corner is taken to the nearest pixel of the tiles' grid (``--mpp``/``--level``), and the region is cut into a
``--stride`` grid of ``--size`` tiles from that corner (one tile when the region is ``--size`` wide, as
``suggest`` writes them with the ``--mpp`` and ``--size`` it prints); a region smaller than ``--size`` is an
error. No tissue check applies inside a region: the user chose it. When the output folder already holds this
slide's tiles (an earlier ``data tile`` into the same dataset), the manifest keeps the earlier tiles and gains
the new ones, and an earlier unlabelled copy of a tile now labelled is removed from ``unlabelled/``, so the
image is not both labelled and unlabelled; tiles at another resolution in that folder are an error.

With ``--mpp`` tiles are cut at exactly that resolution, as ``predict`` reads slides: from the coarsest level
at least as fine, resized (anti-aliased) on a virtual level (:mod:`teachseg.wsi.resolution`). Masks are
rasterised from the polygons straight at the tiles' scale, so they match their images pixel for pixel.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from teachseg.errors import DataError
from teachseg.io import ensure_writable_dir, remove_stale_temporaries, write_json, write_png
from teachseg.wsi.polygons import rasterise_polygons, valid_parts
from teachseg.wsi.readers import SlideReader, open_slide
from teachseg.wsi.resolution import (
    SOURCE_METADATA,
    SOURCE_MODEL_NONE,
    SOURCE_OPTION,
    ResampledReader,
    plan_resolution,
)
from teachseg.wsi.tiling import Tile, tiles_touching
from teachseg.wsi.tissue import detect_tissue


@dataclass
class TileOptions:
    """How ``data tile`` cuts slides: tile size, stride, resolution, tissue share, annotation classes."""

    size: int = 256
    stride: int | None = None
    mpp: float | None = None  # um/px of the tiles (None: level 0, or ``level``, as it is)
    level: int | None = None
    slide_mpp: float | None = None  # the slide's level-0 um/px, overriding its metadata
    ignore_mpp: bool = False  # level 0 as it is, whatever ``mpp``
    min_tissue: float = 0.5
    classes: list[str] | None = None  # tumour classes (None: every annotation is tumour)
    negative: list[str] | None = None  # classes marking labelled non-tumour regions
    thumb_max_side: int = 2048


#: ``mpp_source`` in the manifest when no ``--mpp`` was asked for (level 0, or ``--level``, as it is).
SOURCE_NO_MPP = "no --mpp"


def _class_name(props: dict[str, Any]) -> str | None:
    cls = props.get("classification")
    if isinstance(cls, dict):
        return cls.get("name")
    return cls if isinstance(cls, str) else None


#: QuPath class of the regions ``teachseg suggest`` asks to annotate (never tumour, never negative).
ANNOTATE_NEXT = "Annotate next"


def _features(path: Path) -> list[Any]:
    """The features of a QuPath GeoJSON export (a FeatureCollection, a Feature or a list of them)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(
            "annotation file not found", path=path, fix="give the GeoJSON exported from QuPath"
        ) from None
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).splitlines()[0][:160]
        raise DataError(
            f"annotation file is not valid JSON ({reason})", path=path, fix="export it again from QuPath"
        ) from None
    if isinstance(data, dict) and data.get("type") == "FeatureCollection":
        features = data.get("features", [])
    elif isinstance(data, dict) and data.get("type") == "Feature":
        features = [data]
    elif isinstance(data, list):
        features = data
    else:
        raise DataError(
            "not a GeoJSON Feature or FeatureCollection", path=path, fix="export annotations as GeoJSON"
        )
    return [f for f in features if isinstance(f, dict) and f.get("geometry")]


def _polygons(feature: dict[str, Any], path: Path) -> list[Any]:
    from shapely.geometry import shape

    try:
        return valid_parts(shape(feature["geometry"]))  # every polygonal part, repaired if needed
    except Exception as exc:
        raise DataError(f"a feature has an invalid geometry ({exc})", path=path) from None


def load_annotations(
    path: Path, classes: list[str] | None = None, negative: list[str] | None = None
) -> tuple[list[Any], list[Any]]:
    """Tumour and labelled-negative polygons (shapely, level-0 pixels) from a QuPath GeoJSON export;
    ``Annotate next`` regions are neither (see :func:`load_regions`)."""
    neg_names = {n.lower() for n in negative or []}
    pos_names = {n.lower() for n in classes} if classes else None
    positive, labelled_negative = [], []
    for f in _features(path):
        name = (_class_name(f.get("properties") or {}) or "").lower()
        if name == ANNOTATE_NEXT.lower():
            continue
        polys = _polygons(f, path)
        if name in neg_names:
            labelled_negative.extend(polys)
        elif pos_names is None or name in pos_names:
            positive.extend(polys)
    return positive, labelled_negative


def load_regions(path: Path) -> list[tuple[float, float, float, float]]:
    """The ``Annotate next`` regions of a GeoJSON as level-0 bounding boxes ``(x0, y0, x1, y1)``."""
    regions = []
    for f in _features(path):
        if (_class_name(f.get("properties") or {}) or "").lower() == ANNOTATE_NEXT.lower():
            for p in _polygons(f, path):
                regions.append(tuple(float(v) for v in p.bounds))
    return regions  # type: ignore[return-value]


def rasterise(polygons: list[Any], x0: float, y0: float, size: int, scale: float) -> np.ndarray:
    """A (size, size) uint8 0/255 mask of ``polygons`` (level-0 coordinates) over the tile at level-0 (x0, y0).

    ``scale`` is level-0 pixels per tile pixel. A tile pixel is tumour when its centre lies inside a polygon;
    holes are cut out of their own polygon only (see :func:`teachseg.wsi.polygons.rasterise_polygons`).
    """
    return rasterise_polygons(polygons, (size, size), x0, y0, scale) * np.uint8(255)


def strided_grid(height: int, width: int, size: int, stride: int) -> list[Tile]:
    """Whole tiles every ``stride`` pixels from the top-left corner (no partial tiles at the far edges)."""
    return [
        Tile(y, x) for y in range(0, height - size + 1, stride) for x in range(0, width - size + 1, stride)
    ]


def tile_slide(slide: Path, out_dir: Path, annotations: Path | None, opts: TileOptions) -> dict[str, Any]:
    """Cut tiles from ``slide`` into ``out_dir``; returns counts and the manifest path."""
    from shapely import STRtree
    from shapely.geometry import box

    ensure_writable_dir(out_dir)
    # a killed earlier run's half-written tiles, never renamed into place
    for folder in (out_dir, out_dir / "images", out_dir / "masks", out_dir / "unlabelled"):
        remove_stale_temporaries(folder)
    positive: list[Any] = []
    labelled_negative: list[Any] = []
    regions: list[tuple[float, float, float, float]] = []
    if annotations is not None:
        positive, labelled_negative = load_annotations(annotations, opts.classes, opts.negative)
        regions = load_regions(annotations)
    every = positive + labelled_negative
    tree = STRtree(every) if every else None
    pos_tree = STRtree(positive) if positive else None
    name = slide.stem
    records: list[dict[str, Any]] = []
    with open_slide(slide) as reader:
        if opts.slide_mpp is not None:
            reader.mpp = opts.slide_mpp
        res = plan_resolution(
            reader,
            opts.mpp,
            level=opts.level,
            ignore_mpp=opts.ignore_mpp,
            mpp_source=SOURCE_OPTION if opts.slide_mpp is not None else SOURCE_METADATA,
            target_name="--mpp asks for",
        )
        level = res.level
        # the level as it is, or a virtual level at exactly --mpp resampled from it
        source: SlideReader = (
            ResampledReader(reader, level, res.downsample) if res.resampled(reader) else reader
        )
        src_level = 0 if source is not reader else level
        lv = source.levels[src_level]
        if regions:  # only inside the regions to annotate, all labelled (see the module docstring)
            assert annotations is not None
            tiles = region_tiles(regions, lv.downsample, opts.size, opts.stride or opts.size, annotations)
        else:
            thumb, thumb_ds = reader.thumbnail(opts.thumb_max_side)
            tissue = detect_tissue(thumb)
            grid = strided_grid(lv.height, lv.width, opts.size, opts.stride or opts.size)
            tiles = tiles_touching(
                grid, tissue, thumb_ds / lv.downsample, opts.size, min_fraction=opts.min_tissue
            )
        d = lv.downsample
        for t in tiles:
            x0, y0 = t.x * d, t.y * d
            footprint = box(x0, y0, x0 + opts.size * d, y0 + opts.size * d)
            hits = [] if tree is None else [every[i] for i in tree.query(footprint, predicate="intersects")]
            stem = f"{name}_x{int(round(x0))}_y{int(round(y0))}"
            image = source.read(src_level, t.x, t.y, opts.size, opts.size)
            if hits or regions:
                pos = (
                    []
                    if pos_tree is None
                    else [positive[i] for i in pos_tree.query(footprint, predicate="intersects")]
                )
                write_png(out_dir / "images" / f"{stem}.png", image)
                write_png(out_dir / "masks" / f"{stem}.png", rasterise(pos, x0, y0, opts.size, d))
                records.append({"name": stem, "x": x0, "y": y0, "labelled": True})
            else:
                write_png(out_dir / "unlabelled" / f"{stem}.png", image)
                records.append({"name": stem, "x": x0, "y": y0, "labelled": False})
        manifest = {
            "slide": str(slide),
            "level": level,
            "level_downsample": reader.levels[level].downsample,
            "downsample": d,
            "resampled": source is not reader,
            "mpp": res.mpp,
            "mpp_source": SOURCE_NO_MPP if res.source == SOURCE_MODEL_NONE else res.source,
            "size": opts.size,
            "annotations": str(annotations) if annotations else None,
            "tiles": records,
        }
    labelled = sum(1 for r in records if r["labelled"])
    if regions:
        manifest["tiles"] = merged_records(out_dir / f"{name}_tiles.json", manifest)
        for r in records:  # a tile now labelled is no longer an unlabelled image
            (out_dir / "unlabelled" / f"{r['name']}.png").unlink(missing_ok=True)
    write_json(out_dir / f"{name}_tiles.json", manifest)
    return {
        "labelled": labelled,
        "unlabelled": len(records) - labelled,
        "level": level,
        "mpp": manifest["mpp"],
        "resampled": manifest["resampled"],
        "manifest": out_dir / f"{name}_tiles.json",
    }


def region_tiles(
    regions: list[tuple[float, float, float, float]], downsample: float, size: int, stride: int, path: Path
) -> list[Tile]:
    """The tiles of ``size`` (every ``stride``) inside each ``Annotate next`` region, in level pixels.

    A region's corner and sides are taken to the nearest level pixel (``suggest`` writes them on that grid).

    Raises:
        DataError: a region smaller than ``size`` at this resolution.
    """
    tiles: set[Tile] = set()
    for x0, y0, x1, y1 in regions:
        rx, ry = round(x0 / downsample), round(y0 / downsample)
        rw, rh = round((x1 - x0) / downsample), round((y1 - y0) / downsample)
        if rw < size or rh < size:
            raise DataError(
                f"the '{ANNOTATE_NEXT}' region at x={x0:g}, y={y0:g} is {rw}x{rh} px at this resolution, "
                f"smaller than --size {size}",
                path=path,
                fix="tile with the --mpp and --size that teachseg suggest printed (also in its suggest.json)",
            )
        tiles.update(
            Tile(y, x)
            for y in range(ry, ry + rh - size + 1, stride)
            for x in range(rx, rx + rw - size + 1, stride)
        )
    return sorted(tiles)


def merged_records(path: Path, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The tiles of ``manifest`` after those an earlier manifest of the slide at ``path`` lists (a tile cut
    again replaces its earlier record).

    Raises:
        DataError: the earlier tiles were cut at another resolution or size.
    """
    from teachseg.io import read_json

    if not path.is_file():
        return list(manifest["tiles"])
    try:
        old = read_json(path)
        old_tiles = list(old["tiles"])
        same = math.isclose(float(old["downsample"]), float(manifest["downsample"]), rel_tol=1e-6) and int(
            old["size"]
        ) == int(manifest["size"])
    except (OSError, ValueError, KeyError, TypeError):
        raise DataError(
            "this folder holds a tile manifest of the slide that cannot be read",
            path=path,
            fix="tile into another --out, or delete the manifest and tile the slide again",
        ) from None
    if not same:
        raise DataError(
            f"this folder holds tiles of the slide cut at {old['size']} px, downsample {old['downsample']:g}; "
            f"the regions are cut at {manifest['size']} px, downsample {manifest['downsample']:g}",
            path=path,
            fix="tile with the --mpp and --size of the earlier tiles, or into another --out",
        )
    new = {r["name"] for r in manifest["tiles"]}
    return [r for r in old_tiles if r.get("name") not in new] + list(manifest["tiles"])
