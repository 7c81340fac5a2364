"""Prediction orchestration: one input (slide or ordinary image) -> its output files.

reader -> level by mpp -> thumbnail -> tissue -> tile grid -> batched predictor -> band blender
       -> raw 8-bit raster on disk -> pyramid TIFF, GeoJSON, overlay, summary
"""

from __future__ import annotations

import concurrent.futures as cf
import glob
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from teachseg.errors import DataError
from teachseg.inference import writers
from teachseg.inference.blending import BandBlender, RawRaster
from teachseg.inference.polygons import Vectorised, vectorise_mask
from teachseg.inference.predictor import Predictor
from teachseg.inference.resolution import (
    SOURCE_IGNORED,
    SOURCE_METADATA,
    SOURCE_MODEL_NONE,
    SOURCE_OPTION,
    ResampledReader,
    plan_resolution,
)
from teachseg.inference.slides import SUPPORTED_SUFFIXES, ArrayReader, SlideReader, open_slide
from teachseg.inference.tiling import Tile, gaussian_weight, tile_grid, tiles_touching
from teachseg.inference.tissue import detect_tissue
from teachseg.io import disk_full_error, is_disk_full, read_json, write_json, write_png

#: Single-level images no larger than this (either side) get ordinary PNG outputs.
ORDINARY_MAX_SIDE = 4096
_OUTPUT_ENDINGS = ("_prob.tif", "_prob.png", "_mask.png", "_overlay.png")


@dataclass
class PredictOptions:
    """How to predict; ``None`` means "from the model folder" (tile = image_size, mpp, threshold)."""

    tile: int | None = None
    overlap: float = 0.25
    batch_size: int = 8
    mpp: float | None = None  # resolution to predict at (um/px); None: the model's
    level: int | None = None
    slide_mpp: float | None = None  # the slides' level-0 um/px, overriding their metadata
    ignore_mpp: bool = False  # predict slides at level 0 whatever the resolutions
    tissue_mask: bool = True
    threshold: float | None = None
    min_area_um2: float = 500.0
    min_area_px: float = 64.0  # used when the slide's resolution is unknown (level-0 pixels)
    simplify_px: float = 0.5  # GeoJSON simplification tolerance, in pixels of the vectorised level
    resize: bool | None = None  # ordinary images: resize to image_size (None: when the model has no mpp)
    vector_max_side: int = 8192
    thumb_max_side: int = 2048
    resume: bool = False


@dataclass
class ModelInfo:
    """What the summary says about the model."""

    folder: str
    arch: str
    encoder: str
    image_size: int
    mpp: float | None
    threshold: float
    backend: str = "torch"
    precision: str = "fp32"
    tta: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def discover_inputs(paths: list[Path], out_dir: Path | None = None) -> list[Path]:
    """Expand folders into the slides and images they hold (sorted), skipping teachseg's own outputs."""
    found: list[Path] = []
    out_resolved = out_dir.resolve() if out_dir is not None else None
    for p in paths:
        if not p.exists():
            raise DataError("input not found", path=p, fix="check the path")
        if p.is_file():
            found.append(p)
            continue
        before = len(found)
        for f in sorted(p.rglob("*")):
            if not f.is_file() or f.name.startswith(".") or f.suffix.lower() not in SUPPORTED_SUFFIXES:
                continue
            if f.name.endswith(_OUTPUT_ENDINGS):
                continue
            if out_resolved is not None and out_resolved in f.resolve().parents:
                continue
            found.append(f)
        if len(found) == before and len(paths) > 1:
            raise DataError(
                "the folder holds no slide or image",
                path=p,
                fix=f"give a folder holding {', '.join(SUPPORTED_SUFFIXES)}, or leave it out",
            )
    if not found:
        raise DataError(
            "no slides or images found",
            path=paths[0] if len(paths) == 1 else None,
            fix=f"give files or folders holding {', '.join(SUPPORTED_SUFFIXES)}",
        )
    return found


def output_names(inputs: list[Path]) -> list[str]:
    """A distinct output name per input (the file stem; ``_2``, ``_3`` ... on clashes)."""
    seen: dict[str, int] = {}
    names = []
    for p in inputs:
        stem = p.name[: -len(".ome.tif")] if p.name.lower().endswith(".ome.tif") else p.stem
        n = seen.get(stem, 0) + 1
        seen[stem] = n
        names.append(stem if n == 1 else f"{stem}_{n}")
    return names


def is_complete(out_dir: Path, name: str) -> bool:
    """True when ``NAME_summary.json`` (written last) exists and every output it lists is present."""
    summary = out_dir / f"{name}_summary.json"
    if not summary.is_file():
        return False
    try:
        outputs = read_json(summary).get("outputs", {})
    except (OSError, ValueError):
        return False
    return all((out_dir / f).is_file() for f in outputs.values())


def _batches(tiles: list[Tile], size: int) -> Iterator[list[Tile]]:
    for i in range(0, len(tiles), size):
        yield tiles[i : i + size]


def stitch(
    reader: SlideReader,
    level: int,
    tiles: list[Tile],
    predictor: Callable[[np.ndarray], np.ndarray],
    blender: BandBlender,
    tile: int,
    batch_size: int = 8,
    on_batch: Callable[[int], None] | None = None,
) -> None:
    """Predict ``tiles`` (row-major) in batches and blend them; the next batch is read while one runs."""

    def load(batch: list[Tile]) -> np.ndarray:
        return np.stack([reader.read(level, t.x, t.y, tile, tile) for t in batch])

    batches = list(_batches(sorted(tiles), batch_size))
    if not batches:
        blender.finish()
        return
    with cf.ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(load, batches[0])
        for i, batch in enumerate(batches):
            images = pending.result()
            if i + 1 < len(batches):
                pending = pool.submit(load, batches[i + 1])
            probs = predictor(images)
            for t, p in zip(batch, probs, strict=True):
                blender.add(t.y, t.x, p)
            if on_batch is not None:
                on_batch(len(batch))
    blender.finish()


def predict_input(
    path: Path,
    name: str,
    predictor: Predictor,
    model: ModelInfo,
    out_dir: Path,
    opts: PredictOptions,
    on_batch: Callable[[int], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Predict one slide or image and write its outputs; returns the summary."""
    start = time.perf_counter()
    with open_slide(path) as reader:
        if opts.slide_mpp is not None:
            reader.mpp = opts.slide_mpp
        w, h = reader.dimensions
        ordinary = not reader.is_slide_format and len(reader.levels) == 1 and max(w, h) <= ORDINARY_MAX_SIDE
        predict = _predict_ordinary if ordinary else _predict_slide
        try:
            summary = predict(reader, name, predictor, model, out_dir, opts, on_batch, on_start)
        except OSError as exc:  # the blended raster in the hidden work folder found the disk full
            if is_disk_full(exc):
                raise disk_full_error(out_dir, f"predicting {name} into this folder") from exc
            raise
    summary["seconds"] = round(time.perf_counter() - start, 3)
    write_json(out_dir / f"{name}_summary.json", summary)
    return summary


def _summary_head(reader: SlideReader, kind: str, model: ModelInfo) -> dict[str, Any]:
    w, h = reader.dimensions
    return {
        "input": str(reader.path),
        "kind": kind,
        "reader": reader.backend,
        "width": w,
        "height": h,
        "mpp": reader.mpp,
        "model": asdict(model),
    }


def _predict_slide(
    reader: SlideReader,
    name: str,
    predictor: Predictor,
    model: ModelInfo,
    out_dir: Path,
    opts: PredictOptions,
    on_batch: Callable[[int], None] | None,
    on_start: Callable[[int], None] | None,
) -> dict[str, Any]:
    from scipy import ndimage as ndi

    tile = opts.tile or model.image_size
    threshold = model.threshold if opts.threshold is None else opts.threshold
    res = plan_resolution(
        reader,
        opts.mpp if opts.mpp is not None else model.mpp,
        level=opts.level,
        ignore_mpp=opts.ignore_mpp,
        mpp_source=_slide_mpp_source(opts),
    )
    level = res.level
    w0, h0 = reader.dimensions
    # predict on the level as it is, or on a virtual level at exactly the model's resolution
    source: SlideReader = ResampledReader(reader, level, res.downsample) if res.resampled(reader) else reader
    src_level = 0 if source is not reader else level
    lv = source.levels[src_level]
    thumb, thumb_ds = reader.thumbnail(opts.thumb_max_side)
    if opts.tissue_mask:
        tissue = detect_tissue(thumb, margin=0)
        select = ndi.binary_dilation(tissue, iterations=2) if tissue.any() else tissue
    else:
        tissue = select = np.ones(thumb.shape[:2], dtype=bool)
    grid = tile_grid(lv.height, lv.width, tile, opts.overlap)
    tiles = tiles_touching(grid, select, thumb_ds / lv.downsample, tile) if opts.tissue_mask else grid
    if on_start is not None:
        on_start(len(tiles))

    files = {
        "probability": f"{name}_prob.tif",
        "geojson": f"{name}.geojson",
        "overlay": f"{name}_overlay.png",
    }
    workdir = Path(tempfile.mkdtemp(prefix=f".{name}.work.", dir=out_dir))
    try:
        raster = RawRaster(workdir / "prob.u8", lv.height, lv.width)
        blender = BandBlender(raster, tile, gaussian_weight(tile), threshold)
        stitch(source, src_level, tiles, predictor, blender, tile, opts.batch_size, on_batch)
        pyramid = writers.build_pyramid(raster, workdir)
        # the TIFF spans the slide's level-0 extent: its resolution tags make the scale exact per axis
        prob_ds, prob_mpp = writers.overlay_scale((w0, h0), (lv.width, lv.height), reader.mpp)
        writers.write_pyramid_tiff(
            out_dir / files["probability"],
            pyramid,
            prob_mpp,
            description=f"teachseg tumour probability x255 ({name}); level-0 pixels per pixel: "
            f"x {prob_ds[0]:.9g}, y {prob_ds[1]:.9g}",
        )
        thr_u8 = int(np.ceil(threshold * 255.0 - 1e-6))
        vec, vec_ds = writers.threshold_level(pyramid, opts.vector_max_side, thr_u8)
        scale = vec_ds * lv.downsample  # level-0 pixels per vector-raster pixel
        min_area = opts.min_area_um2 / reader.mpp**2 if reader.mpp else opts.min_area_px
        vector = vectorise_mask(vec, scale, min_area=min_area, simplify=opts.simplify_px * scale)
        del vec
        writers.write_geojson(
            out_dir / files["geojson"], writers.geojson_features(vector.polygons, mpp=reader.mpp)
        )
        small, _ = writers.read_level_for(pyramid, max(thumb.shape[:2]))
        small = writers.resize_to(small, thumb.shape[1], thumb.shape[0])
        writers.write_overlay(out_dir / files["overlay"], thumb, small >= thr_u8)
        for r in pyramid:
            r.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    px_area0 = lv.downsample**2
    tumour_px = blender.positive_pixels * px_area0
    tissue_px = float(tissue.sum()) * thumb_ds**2
    summary = _summary_head(reader, "slide", model)
    mm2 = (reader.mpp**2 / 1e6) if reader.mpp else None
    summary.update(
        level=level,
        level_downsample=reader.levels[level].downsample,
        level_mpp=reader.level_mpp(level),
        mpp_used=res.mpp,
        mpp_source=res.source,
        predict_downsample=lv.downsample,
        probability_downsample=[round(d, 9) for d in prob_ds],
        probability_mpp=None if prob_mpp is None else [round(m, 9) for m in prob_mpp],
        overlay_downsample=round(w0 / thumb.shape[1], 9),
        resampled=source is not reader,
        predict_width=lv.width,
        predict_height=lv.height,
        tile=tile,
        overlap=opts.overlap,
        threshold=threshold,
        tissue_mask=opts.tissue_mask,
        no_tissue=bool(opts.tissue_mask and not tissue.any()),
        tiles_total=len(grid),
        tiles_predicted=len(tiles),
        tumour_area_px=tumour_px,
        tissue_area_px=tissue_px,
        tumour_area_mm2=None if mm2 is None else round(tumour_px * mm2, 6),
        tissue_area_mm2=None if mm2 is None else round(tissue_px * mm2, 6),
        tumour_fraction_of_tissue=round(tumour_px / tissue_px, 6) if tissue_px else 0.0,
        polygons=len(vector.polygons),
        **_polygon_accounting(vector, tumour_px, scale, min_area, mm2),
        outputs=files,
    )
    warning = _area_warning(summary)
    if warning:
        summary["warnings"] = [warning]
    if summary["no_tissue"]:
        summary["note"] = "no tissue detected: nothing was predicted and the GeoJSON is empty"
    return summary


#: How far the GeoJSON's area may stray from the thresholded mask minus the minimum-area rule before
#: ``predict`` warns: simplification moves it by far less; a coarser vectorised level than the predicted one
#: (slides larger than ``vector_max_side``) can move it by more.
AREA_TOLERANCE = 0.02


def _slide_mpp_source(opts: PredictOptions) -> str:
    return SOURCE_OPTION if opts.slide_mpp is not None else SOURCE_METADATA


def remove_stale_work(out_dir: Path, name: str) -> list[Path]:
    """Remove what a killed run left for ``name`` in ``out_dir``; returns the paths removed.

    That is the hidden ``.NAME.work.*`` folder (tiles blended so far, on disk without a record of which
    tiles they were, so it is not reusable) and the hidden temporary files of outputs being renamed into
    place (``.NAME_prob.XXXXXXXX.tmp.tif`` ...).
    """
    stems = [name] + [f"{name}{ending.rsplit('.', 1)[0]}" for ending in (*_OUTPUT_ENDINGS, "_summary.json")]
    patterns = [f".{glob.escape(name)}.work.*"] + [f".{glob.escape(s)}.{'?' * 8}.tmp*" for s in stems]
    return _remove_all(sorted({p for pattern in patterns for p in out_dir.glob(pattern)}))


def remove_stale_exports(out_dir: Path) -> list[Path]:
    """Remove the hidden ONNX export folders and write probes (``.teachseg-export.*``, ``.teachseg-probe*``)
    a killed ``predict`` left behind."""
    return _remove_all(sorted([*out_dir.glob(".teachseg-export.*"), *out_dir.glob(".teachseg-probe*")]))


def _remove_all(paths: list[Path]) -> list[Path]:
    """Delete files and folders (whatever is already gone is ignored); returns ``paths``."""
    for p in paths:
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return paths


def _polygon_accounting(
    vector: Vectorised, tumour_px: float, scale: float, min_area: float, mm2: float | None
) -> dict[str, Any]:
    """Where the tumour area goes between the probability map and the GeoJSON (level-0 pixels)."""
    expected = tumour_px - vector.removed_area + vector.filled_area
    return {
        "geojson_area_px": round(vector.polygon_area, 2),
        "geojson_area_mm2": None if mm2 is None else round(vector.polygon_area * mm2, 6),
        "vector_mask_area_px": round(vector.mask_area, 2),
        "vector_downsample": round(scale, 6),
        "min_area_px": round(min_area, 2),
        "min_area_removed_px": round(vector.removed_area, 2),
        "holes_filled_px": round(vector.filled_area, 2),
        "geojson_area_expected_px": round(expected, 2),
    }


def _area_warning(summary: dict[str, Any]) -> str | None:
    """A message when the GeoJSON's area differs from the mask's by more than the documented rules explain."""
    expected, got = summary["geojson_area_expected_px"], summary["geojson_area_px"]
    if expected <= 0 and got <= 0:
        return None
    off = abs(got - expected) / max(expected, 1.0)
    if off <= AREA_TOLERANCE:
        return None
    return (
        f"the GeoJSON covers {got:.0f} px^2 where the thresholded mask minus the minimum-area rule has "
        f"{expected:.0f} px^2 ({100 * off:.1f}% apart; polygons were drawn at downsample "
        f"{summary['vector_downsample']:g}: raise --vector-max-side for a finer outline)"
    )


def _predict_ordinary(
    reader: SlideReader,
    name: str,
    predictor: Predictor,
    model: ModelInfo,
    out_dir: Path,
    opts: PredictOptions,
    on_batch: Callable[[int], None] | None,
    on_start: Callable[[int], None] | None,
) -> dict[str, Any]:
    w, h = reader.dimensions
    image = reader.read(0, 0, 0, w, h)
    threshold = model.threshold if opts.threshold is None else opts.threshold
    resize = opts.resize if opts.resize is not None else model.mpp is None
    tile = opts.tile or model.image_size
    if resize:
        if on_start is not None:
            on_start(1)
        s = model.image_size
        small = writers.resize_to(image, s, s)
        p = predictor(small[None])[0]
        prob = np.asarray(writers.resize_to(np.clip(p, 0, 1).astype(np.float32), w, h), dtype=np.float32)
        prob_u8 = np.clip(np.rint(prob * 255.0), 0, 255).astype(np.uint8)
        n_tiles = 1
        if on_batch is not None:
            on_batch(1)
    else:
        tiles = tile_grid(h, w, tile, opts.overlap)
        n_tiles = len(tiles)
        if on_start is not None:
            on_start(n_tiles)
        with tempfile.TemporaryDirectory(prefix=f".{name}.work.", dir=out_dir) as tmp:
            raster = RawRaster(Path(tmp) / "prob.u8", h, w)
            blender = BandBlender(raster, tile, gaussian_weight(tile), threshold)
            stitch(ArrayReader(image), 0, tiles, predictor, blender, tile, opts.batch_size, on_batch)
            prob_u8 = raster.read_rows(0, h).copy()
            raster.close()
    thr_u8 = int(np.ceil(threshold * 255.0 - 1e-6))
    mask = prob_u8 >= thr_u8
    files = {"mask": f"{name}_mask.png", "probability": f"{name}_prob.png", "overlay": f"{name}_overlay.png"}
    write_png(out_dir / files["mask"], mask.astype(np.uint8) * 255)
    write_png(out_dir / files["probability"], prob_u8)
    writers.write_overlay(out_dir / files["overlay"], image, mask)
    summary = _summary_head(reader, "image", model)
    summary.update(
        # ordinary images are predicted at their own pixels (or resized to image_size): their mpp is not used
        mpp_used=None if resize else reader.mpp,
        mpp_source=SOURCE_MODEL_NONE if resize and model.mpp is None else SOURCE_IGNORED,
        resized_to_model=bool(resize),
        tile=None if resize else tile,
        threshold=threshold,
        tiles_predicted=n_tiles,
        tumour_area_px=int(mask.sum()),
        tumour_fraction=round(float(mask.mean()), 6),
        tumour_area_mm2=round(float(mask.sum()) * reader.mpp**2 / 1e6, 6) if reader.mpp else None,
        outputs=files,
    )
    return summary


def load_predictor(
    model_dir: Path,
    backend: str = "torch",
    onnx_path: Path | None = None,
    device: str = "auto",
    precision: str = "auto",
    tta: bool = False,
    workdir: Path | None = None,
) -> tuple[Predictor, ModelInfo]:
    """Load a model folder into a :class:`Predictor` (exporting ONNX to ``workdir`` when needed)."""
    from teachseg.errors import ModelError
    from teachseg.models import load_model_folder

    if backend not in ("torch", "onnx"):
        raise ModelError(f"unknown backend '{backend}'", fix="use --backend torch or --backend onnx")
    model, meta = load_model_folder(model_dir)
    if backend == "onnx":
        if onnx_path is None:
            onnx_path = model_dir / "model.onnx"
            if not onnx_path.is_file():
                from teachseg.inference.export import export_onnx

                onnx_path = export_onnx(
                    model, (workdir or Path(tempfile.mkdtemp())) / "model.onnx", meta.in_channels
                )
        predictor = Predictor(None, meta.mean, meta.std, tta=tta, onnx_path=onnx_path)
    else:
        predictor = Predictor(model, meta.mean, meta.std, device=device, precision=precision, tta=tta)
    info = ModelInfo(
        folder=str(model_dir),
        arch=meta.arch,
        encoder=meta.encoder,
        image_size=meta.image_size,
        mpp=meta.mpp,
        threshold=meta.threshold,
        backend=predictor.backend,
        precision=predictor.precision,
        tta=tta,
        extra={"summary": meta.summary} if meta.summary else {},
    )
    return predictor, info


def predict_paths(
    predictor: Predictor,
    model: ModelInfo,
    inputs: list[Path],
    out_dir: Path,
    opts: PredictOptions,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Predict every input (a cohort: files, folders, text files listing paths) into ``out_dir``.

    Complete inputs are skipped with ``opts.resume``. With more than one input, an input that fails is
    recorded in ``out_dir/failures.csv`` and the others go on; ``out_dir/cohort.csv`` gets a row per finished
    input (see :mod:`teachseg.inference.cohort`). One progress bar runs over the slides and their tiles.

    Raises:
        DataError: after the others finished, when some inputs failed (naming ``failures.csv``).
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from teachseg.inference.cohort import CohortTables, expand_lists, failure_from
    from teachseg.io import ensure_writable_dir

    ensure_writable_dir(out_dir)
    listed = expand_lists(inputs)
    if not listed.paths:
        files: list[Path] = []
    else:
        files = discover_inputs(listed.paths, out_dir)
    names = output_names(files)
    tables = CohortTables(out_dir)
    for missing in listed.missing:
        tables.fail(missing)
        if log:
            log(f"{missing.slide}: skipped: {missing.error}. Fix: {missing.fix}")
    summaries: list[dict[str, Any]] = []
    cohort = len(files) + len(listed.missing) > 1

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[where]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not progress,
        transient=True,
    )
    if log and model.mpp is None and opts.mpp is None and opts.level is None and not opts.ignore_mpp:
        log("the model records no resolution (mpp): slides are predicted at level 0 as they are")
    with bar:
        # one bar over slides and tiles: each slide is one unit, shared out over its tiles
        overall = bar.add_task("slides", total=max(len(files), 1), where="")
        for index, (path, name) in enumerate(zip(files, names, strict=True)):
            where = f"{index + 1}/{len(files)} {name}"
            bar.update(overall, completed=index, where=where)
            if opts.resume:
                # a killed run leaves its hidden work folder behind; nothing in it is reusable
                for stale in remove_stale_work(out_dir, name):
                    if log:
                        log(f"{name}: removed {stale.name} left by an interrupted run (--resume)")
            if opts.resume and is_complete(out_dir, name):
                if log:
                    log(f"{name}: complete, skipped (--resume)")
                summary = read_json(out_dir / f"{name}_summary.json")
                summaries.append(summary)
                tables.add(name, summary)
                continue
            tiles = {"total": 0, "done": 0}

            def set_total(n: int, tiles: dict[str, int] = tiles, where: str = where) -> None:
                tiles["total"] = n
                bar.update(overall, where=f"{where} (0/{n} tiles)")

            def advance(
                n: int, tiles: dict[str, int] = tiles, where: str = where, index: int = index
            ) -> None:
                tiles["done"] += n
                share = tiles["done"] / max(tiles["total"], 1)
                bar.update(
                    overall,
                    completed=index + min(share, 1.0),
                    where=f"{where} ({tiles['done']}/{tiles['total']} tiles)",
                )

            try:
                summary = predict_input(
                    path, name, predictor, model, out_dir, opts, on_batch=advance, on_start=set_total
                )
            except Exception as exc:
                if not cohort:
                    raise
                # one unreadable slide should not cost the others: record it and go on
                failure = failure_from(path, exc)
                tables.fail(failure)
                if log:
                    log(f"{name}: skipped: {failure.error}")
                continue
            summaries.append(summary)
            tables.add(name, summary)
            if log:
                log(_describe(name, summary))
                for warning in summary.get("warnings", []):
                    log(f"{name}: warning: {warning}")
        bar.update(overall, completed=len(files))
    tables.finish()
    if tables.failures:
        failed = [Path(f.slide).name for f in tables.failures]
        total = len(files) + len(listed.missing)
        raise DataError(
            f"{len(failed)} of {total} inputs could not be read ({', '.join(failed[:5])}"
            f"{', ...' if len(failed) > 5 else ''}); the others were predicted; see failures.csv",
            path=out_dir,
            fix="fix or remove those inputs (failures.csv names each one and its fix) and run again with --resume",
        )
    return summaries


def _describe(name: str, s: dict[str, Any]) -> str:
    if s.get("kind") == "slide":
        if s.get("no_tissue"):
            return f"{name}: no tissue found ({s['seconds']:.1f} s)"
        area = (
            f"{s['tumour_area_mm2']:.3f} mm^2"
            if s.get("tumour_area_mm2") is not None
            else f"{s['tumour_area_px']:.0f} px"
        )
        return f"{name}: tumour {area}, {s['polygons']} polygons, {s['tiles_predicted']} tiles, {s['seconds']:.1f} s"
    return f"{name}: tumour {100 * s['tumour_fraction']:.1f}% of the image ({s['seconds']:.1f} s)"
