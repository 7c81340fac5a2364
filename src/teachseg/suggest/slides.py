"""Suggest square regions of slide tissue to annotate, and write them as QuPath ``Annotate next`` annotations.

Each slide is read at the model's resolution as ``predict`` reads it (:func:`teachseg.wsi.resolution
.plan_resolution`: the nearest level at least as fine, resampled on a virtual level at exactly the model's
um/px). Candidates are the squares of ``size`` pixels (at that resolution) of a grid from the top-left corner
whose share of tissue (:func:`teachseg.wsi.tissue.detect_tissue` on the thumbnail) exceeds ``min_tissue``, as
``teachseg data tile`` keeps its tiles. A region is predicted at its own size (no resizing: it is already at
the model's scale), scored and chosen like an image (:mod:`.scoring`, :mod:`.diversity`).

With a run folder, the run's tile manifests (``*_tiles.json`` of ``teachseg data tile``) tell which tiles of a
slide already have masks: regions overlapping them are left out, and a slide with a validation or test tile is
left out whole (a region of it would be annotated next to a held-out tile).

``SLIDE_annotate_next.geojson`` holds the chosen regions of a slide as QuPath annotations of class
``Annotate next`` (level-0 pixel coordinates; properties ``name`` ``#rank`` and measurements ``Suggest rank``,
``Suggest score``, ``Region px``, ``Region um/px``). Draw the tumour inside them in QuPath, export all
annotations, and ``teachseg data tile SLIDE --annotations EXPORT.geojson --mpp MPP --size SIZE --out DIR``
cuts exactly those squares, with the tumour drawn in each as its mask (:mod:`teachseg.data.tile_slides`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from teachseg.data.tile_slides import ANNOTATE_NEXT
from teachseg.errors import ConfigError, DataError
from teachseg.suggest.outputs import (
    CONTACT_SHEET,
    SUGGEST_JSON,
    SUGGESTIONS_CSV,
    Suggestion,
    write_contact_sheet,
    write_suggestions,
    write_summary,
)
from teachseg.suggest.pool import Pool
from teachseg.suggest.scoring import ScoreSettings
from teachseg.suggest.source import RunData, Source
from teachseg.wsi.readers import Level, SlideReader

ANNOTATE_COLOUR = (255, 170, 0)
Progress = Callable[[int, int], None]
OVERLAPS_MASKED_TILE = "overlaps a tile that has a mask"
SLIDE_HELD_OUT = "its slide holds validation or test tiles"


@dataclass(frozen=True)
class SlideOptions:
    """How slides are read: region side (model pixels; None: the model's image_size), tissue share,
    resolution overrides (as ``predict``'s ``--slide-mpp`` / ``--ignore-mpp``)."""

    size: int | None = None
    min_tissue: float = 0.5
    slide_mpp: float | None = None
    ignore_mpp: bool = False


@dataclass
class SlidePlan:
    """One slide laid out at the model's resolution: where each candidate region is."""

    path: Path
    level: int  #: the pyramid level read
    downsample: float  #: level-0 pixels per region pixel
    resampled: bool
    mpp: float | None  #: um/px of the regions
    slide_mpp: float | None  #: level-0 um/px
    size: int
    tiles: list[tuple[int, int]]  #: (x, y) of each region's corner, in region pixels

    def box(self, x: int, y: int) -> tuple[float, float, float, float]:
        """Level-0 ``(x, y, width, height)`` of the region at ``(x, y)``."""
        d = self.downsample
        return (x * d, y * d, self.size * d, self.size * d)

    def name(self, x: int, y: int) -> str:
        """The region's name: the stem ``teachseg data tile`` gives the tile cut there."""
        x0, y0, _, _ = self.box(x, y)
        return f"{self.path.stem}_x{int(round(x0))}_y{int(round(y0))}"


def open_plan(reader: SlideReader, model_mpp: float | None, size: int, opts: SlideOptions) -> SlidePlan:
    """The slide's candidate regions at the model's resolution (``opts.slide_mpp`` is set on ``reader``)."""
    from teachseg.data.tile_slides import strided_grid
    from teachseg.wsi.resolution import SOURCE_METADATA, SOURCE_OPTION, plan_resolution
    from teachseg.wsi.tiling import tiles_touching
    from teachseg.wsi.tissue import detect_tissue

    if opts.slide_mpp is not None:
        reader.mpp = opts.slide_mpp
    res = plan_resolution(
        reader,
        model_mpp,
        ignore_mpp=opts.ignore_mpp,
        mpp_source=SOURCE_OPTION if opts.slide_mpp is not None else SOURCE_METADATA,
    )
    resampled = res.resampled(reader)
    lv = reader.levels[res.level]
    if resampled:
        w0, h0 = reader.dimensions
        lv = Level(0, max(1, round(w0 / res.downsample)), max(1, round(h0 / res.downsample)), res.downsample)
    thumb, thumb_ds = reader.thumbnail(2048)
    tissue = detect_tissue(thumb)
    grid = strided_grid(lv.height, lv.width, size, size)
    kept = tiles_touching(grid, tissue, thumb_ds / lv.downsample, size, min_fraction=opts.min_tissue)
    plan = SlidePlan(
        reader.path,
        res.level,
        lv.downsample,
        resampled,
        res.mpp,
        reader.mpp,
        size,
        [(t.x, t.y) for t in kept],
    )
    return plan


def region_source(reader: SlideReader, plan: SlidePlan) -> SlideReader:
    """The reader that serves ``plan``'s regions: a virtual level when resampled, else the slide itself."""
    from teachseg.wsi.resolution import ResampledReader

    return ResampledReader(reader, plan.level, plan.downsample) if plan.resampled else reader


def read_region(source: SlideReader, plan: SlidePlan, x: int, y: int) -> np.ndarray:
    """The (size, size, 3) uint8 region at ``(x, y)`` (``source`` from :func:`region_source`)."""
    return source.read(0 if plan.resampled else plan.level, x, y, plan.size, plan.size)


def masked_tiles(run: RunData, slide: Path) -> tuple[list[tuple[float, float, float, float]], bool]:
    """Level-0 boxes of the run's tiles of ``slide`` that have masks, and whether any of them is held out."""
    from teachseg.data.grouping import TILE_FOLDERS, TILE_MANIFEST_SUFFIX
    from teachseg.io import read_json

    by_id = run.discovery.by_id()
    held = {i for ids in run.held_out.values() for i in ids}
    boxes: list[tuple[float, float, float, float]] = []
    held_out = False
    manifests: dict[Path, dict[str, Any]] = {}
    for i in [*run.train, *sorted(held)]:
        s = by_id.get(i)
        if s is None:
            continue
        folder = s.image.parent.parent if s.image.parent.name in TILE_FOLDERS else s.image.parent
        manifest = folder / f"{slide.stem}{TILE_MANIFEST_SUFFIX}"
        if manifest not in manifests:
            try:
                manifests[manifest] = read_json(manifest) if manifest.is_file() else {}
            except (OSError, ValueError):
                manifests[manifest] = {}
        m = manifests[manifest]
        record = next((r for r in m.get("tiles", []) if r.get("name") == s.image.stem), None)
        if record is None:
            continue
        side = float(m.get("size", 0)) * float(m.get("downsample", 1.0))
        boxes.append((float(record["x"]), float(record["y"]), side, side))
        held_out = held_out or i in held
    return boxes, held_out


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def slide_hygiene(plan: SlidePlan, run: RunData | None, pool: Pool) -> list[tuple[int, int]]:
    """The regions of ``plan`` that may be suggested (the others recorded in ``pool.excluded``)."""
    if run is None:
        return plan.tiles
    boxes, held_out = masked_tiles(run, plan.path)
    if held_out:
        pool.exclude(SLIDE_HELD_OUT, [plan.name(x, y) for x, y in plan.tiles])
        return []
    keep: list[tuple[int, int]] = []
    gone: list[tuple[int, int]] = []
    for x, y in plan.tiles:
        (gone if any(_overlaps(plan.box(x, y), b) for b in boxes) else keep).append((x, y))
    pool.exclude(OVERLAPS_MASKED_TILE, [plan.name(x, y) for x, y in gone])
    return keep


def region_batches(
    source: SlideReader, plan: SlidePlan, tiles: Sequence[tuple[int, int]], batch: int
) -> Iterator[list[np.ndarray]]:
    """The regions of ``tiles``, read in batches."""
    for start in range(0, len(tiles), batch):
        yield [read_region(source, plan, x, y) for x, y in tiles[start : start + batch]]


def region_size(size: int | None, image_size: int) -> int:
    """The region side: ``size`` or the model's ``image_size``, a multiple of 32 (the networks' stride)."""
    side = size or image_size
    if side < 32 or side % 32:
        raise ConfigError(
            f"a region side of {side} px cannot be predicted whole",
            fix="give --region-size as a multiple of 32",
        )
    return side


def regions_geojson(plan: SlidePlan, chosen: Sequence[Any]) -> dict[str, Any]:
    """The QuPath FeatureCollection of ``chosen`` regions of one slide (:class:`~.outputs.Suggestion` s)."""
    from shapely.geometry import box

    from teachseg.inference.writers import geojson_features

    polygons = [
        box(s.region[0], s.region[1], s.region[0] + s.region[2], s.region[1] + s.region[3]) for s in chosen
    ]
    collection = geojson_features(polygons, ANNOTATE_NEXT, ANNOTATE_COLOUR, plan.slide_mpp, plan.path.stem)
    for feature, s in zip(collection["features"], chosen, strict=True):
        props = feature["properties"]
        props["name"] = f"#{s.rank}"
        props["measurements"].update(
            {"Suggest rank": s.rank, "Suggest score": round(s.score, 6), "Region px": plan.size}
        )
        if plan.mpp:
            props["measurements"]["Region um/px"] = plan.mpp
    return collection


def geojson_name(slide: Path) -> str:
    """The file name of a slide's suggested regions."""
    return f"{slide.stem}_annotate_next.geojson"


def tile_command(plan: SlidePlan, out_dir: Path) -> str:
    """The ``teachseg data tile`` command that cuts the regions once the user has drawn inside them."""
    mpp = f" --mpp {plan.mpp:g}" if plan.mpp else ""
    return (
        f"teachseg data tile {plan.path} --annotations {plan.path.stem}_export.geojson{mpp} "
        f"--size {plan.size} --out {out_dir / 'tiles'}"
    )


def suggest_slides(
    source: Source,
    slides: Sequence[Path],
    budget: int,
    out_dir: Path,
    settings: ScoreSettings | None = None,
    opts: SlideOptions | None = None,
    *,
    seed: int = 0,
    device: str = "cpu",
    batch_size: int = 8,
    progress: Progress | None = None,
) -> list[Suggestion]:
    """Rank the tissue regions of ``slides``, choose ``budget`` and write the outputs (one GeoJSON per slide
    with chosen regions, ``suggestions.csv``, ``suggest.json``, the contact sheet); the suggestions, best first."""
    from teachseg.data.records import Sample
    from teachseg.inference.writers import write_geojson
    from teachseg.io import ensure_writable_dir
    from teachseg.suggest.members import Members
    from teachseg.suggest.rank import (
        Scored,
        anchor_features,
        check_budget,
        check_model_matches_run,
        choose,
        score_batches,
        summary,
    )
    from teachseg.wsi.readers import open_slide

    settings, opts = settings or ScoreSettings(), opts or SlideOptions()
    stems = [Path(p).stem for p in slides]
    if len(set(stems)) != len(stems):
        twice = next(s for s in stems if stems.count(s) > 1)
        raise DataError(
            f"two slides are named {twice!r}: their regions and GeoJSON files would share names",
            fix="rank them in two calls of teachseg suggest, each with its own --out",
        )
    ensure_writable_dir(out_dir)
    check_model_matches_run(source)
    members = Members(source.models, settings.flips, device)
    size = region_size(opts.size, members.image_size)
    run = source.run
    pool = Pool([], anchors=[by.image for by in _train_samples(run)])
    plans: list[tuple[SlidePlan, list[tuple[int, int]]]] = []
    for slide in slides:
        with open_slide(slide) as reader:
            plan = open_plan(reader, members.meta.mpp, size, opts)
        tiles = slide_hygiene(plan, run, pool)
        plans.append((plan, tiles))
        pool.candidates += [Sample(plan.name(x, y), plan.path) for x, y in tiles]
    check_budget(budget, pool, "tissue regions")
    parts: list[Any] = []
    feats: list[np.ndarray] = []
    where: list[tuple[SlidePlan, int, int]] = []
    total = len(pool.candidates)
    for plan, tiles in plans:
        with open_slide(plan.path) as reader:
            reader.mpp = plan.slide_mpp
            done = len(parts)
            tick = None if progress is None else (lambda n, _t, d=done: progress(d + n, total))
            p, f = score_batches(
                members,
                region_batches(region_source(reader, plan), plan, tiles, batch_size),
                settings,
                False,
                tick,
            )
        parts += p
        feats.append(f)
        where += [(plan, x, y) for x, y in tiles]
    anchors = anchor_features(members, pool.anchors, batch_size)
    scored = Scored(
        [s.id for s in pool.candidates],
        [s.image for s in pool.candidates],
        parts,
        np.concatenate(feats),
        anchors,
        len(members.folders) > 1,
    )
    chosen = choose(scored, settings, budget, None, seed)
    index = {s.id: k for k, s in enumerate(pool.candidates)}
    for s in chosen:
        plan, x, y = where[index[s.id]]
        s.region = plan.box(x, y)
    written = []
    for plan, _ in plans:
        mine = [s for s in chosen if s.image == plan.path]
        if mine:
            write_geojson(out_dir / geojson_name(plan.path), regions_geojson(plan, mine))
            written.append(
                {
                    "slide": str(plan.path),
                    "geojson": geojson_name(plan.path),
                    "regions": len(mine),
                    "level": plan.level,
                    "downsample": plan.downsample,
                    "mpp": plan.mpp,
                    "size": plan.size,
                    "tile_command": tile_command(plan, out_dir),
                }
            )
    write_suggestions(out_dir / SUGGESTIONS_CSV, chosen)
    write_contact_sheet(out_dir / CONTACT_SHEET, chosen, _region_reader(where, index))
    write_summary(
        out_dir / SUGGEST_JSON,
        summary(
            source, pool, settings, budget, seed, slides=written, region_size=size, min_tissue=opts.min_tissue
        ),
    )
    return chosen


def _train_samples(run: RunData | None) -> list[Any]:
    if run is None:
        return []
    by_id = run.discovery.by_id()
    return [by_id[i] for i in run.train if i in by_id]


def _region_reader(where: Sequence[tuple[SlidePlan, int, int]], index: dict[str, int]) -> Any:
    from teachseg.wsi.readers import open_slide

    def read(s: Suggestion) -> np.ndarray:
        plan, x, y = where[index[s.id]]
        with open_slide(plan.path) as reader:
            reader.mpp = plan.slide_mpp
            return read_region(region_source(reader, plan), plan, x, y)

    return read
