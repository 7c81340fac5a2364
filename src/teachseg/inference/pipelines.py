"""One input -> its output files: the slide pipeline and the ordinary-image pipeline.

slide: reader -> level by mpp -> thumbnail -> tissue -> tile grid -> sliding-window inferer -> 8-bit raster on
disk -> pyramid TIFF, GeoJSON, overlay, summary. image: the whole image (tiled, or resized to the model's
input) -> probability and mask PNGs, overlay, summary. Both read their settings from one
:class:`~teachseg.inference.options.ResolvedOptions`.
"""

from __future__ import annotations

import concurrent.futures as cf
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from teachseg.inference import writers
from teachseg.inference.blending import RawRaster
from teachseg.inference.options import ModelInfo, ResolvedOptions
from teachseg.inference.progress import PredictProgress
from teachseg.inference.quantise import to_uint8
from teachseg.inference.sliding import SlidingWindowInferer
from teachseg.io import write_png
from teachseg.runfiles import PredictSummary
from teachseg.wsi.polygons import Vectorised, vectorise_mask
from teachseg.wsi.readers import ArrayReader, SlideReader
from teachseg.wsi.resolution import ResampledReader, plan_resolution
from teachseg.wsi.tiling import tiles_touching
from teachseg.wsi.tissue import detect_tissue

#: How far the GeoJSON's area may stray from the thresholded mask minus the minimum-area rule before
#: ``predict`` warns: simplification moves it by far less; a coarser vectorised level than the predicted one
#: (slides larger than ``vector_max_side``) can move it by more.
AREA_TOLERANCE = 0.02


def summary_head(reader: SlideReader, kind: str, model: ModelInfo) -> dict[str, Any]:
    """The summary fields every input has: what was read, its size and resolution, and the model."""
    w, h = reader.dimensions
    return {
        "input": str(Path(reader.path).resolve()),  # absolute: `teachseg view` finds it from any folder
        "kind": kind,
        "reader": reader.backend,
        "width": w,
        "height": h,
        "mpp": reader.mpp,
        "model": asdict(model),
    }


def predict_slide(
    reader: SlideReader,
    name: str,
    inferer: SlidingWindowInferer,
    model: ModelInfo,
    out_dir: Path,
    ro: ResolvedOptions,
    progress: PredictProgress,
) -> PredictSummary:
    """Predict a slide (or large image) into ``NAME_prob.tif``, ``NAME.geojson`` and ``NAME_overlay.png``."""
    from scipy import ndimage as ndi

    tile = inferer.tile
    res = plan_resolution(
        reader, ro.mpp, level=ro.level, ignore_mpp=ro.ignore_mpp, mpp_source=ro.slide_mpp_source
    )
    level = res.level
    w0, h0 = reader.dimensions
    # predict on the level as it is, or on a virtual level at exactly the model's resolution
    source: SlideReader = ResampledReader(reader, level, res.downsample) if res.resampled(reader) else reader
    src_level = 0 if source is not reader else level
    lv = source.levels[src_level]
    thumb, thumb_ds = reader.thumbnail(ro.thumb_max_side)
    if ro.tissue_mask:
        tissue = detect_tissue(thumb, margin=0)
        select = ndi.binary_dilation(tissue, iterations=2) if tissue.any() else tissue
    else:
        tissue = select = np.ones(thumb.shape[:2], dtype=bool)
    grid = inferer.grid(lv.height, lv.width)
    tiles = tiles_touching(grid, select, thumb_ds / lv.downsample, tile) if ro.tissue_mask else grid
    progress.on_tiles(len(tiles))

    files = {
        "probability": f"{name}_prob.tif",
        "geojson": f"{name}.geojson",
        "overlay": f"{name}_overlay.png",
    }
    workdir = Path(tempfile.mkdtemp(prefix=f".{name}.work.", dir=out_dir))
    try:
        raster = RawRaster(workdir / "prob.u8", lv.height, lv.width)
        blender = inferer(source, src_level, tiles, raster, progress.on_advance)
        pyramid = writers.build_pyramid(raster, workdir)
        # the TIFF spans the slide's level-0 extent: its resolution tags make the scale exact per axis
        prob_ds, prob_mpp = writers.overlay_scale((w0, h0), (lv.width, lv.height), reader.mpp)
        # the TIFF's compression and the overlay's PNG encoder release the GIL: write them on a worker
        # thread while this one draws the polygons (mostly Python); an error in either is raised here
        with cf.ThreadPoolExecutor(max_workers=1) as pool:
            tiff_done = pool.submit(
                writers.write_pyramid_tiff,
                out_dir / files["probability"],
                pyramid,
                prob_mpp,
                description=f"teachseg tumour probability x255 ({name}); level-0 pixels per pixel: "
                f"x {prob_ds[0]:.9g}, y {prob_ds[1]:.9g}",
            )
            small, _ = writers.read_level_for(pyramid, max(thumb.shape[:2]))
            small = writers.resize_to(small, thumb.shape[1], thumb.shape[0])
            overlay_done = pool.submit(
                writers.write_overlay, out_dir / files["overlay"], thumb, small >= ro.threshold_u8
            )
            tissue_count, tumour_in_tissue = tissue_accounting(raster, tissue, ro.threshold_u8)
            vec, vec_ds = writers.threshold_level(pyramid, ro.vector_max_side, ro.threshold_u8)
            scale = vec_ds * lv.downsample  # level-0 pixels per vector-raster pixel
            min_area = ro.min_area_um2 / reader.mpp**2 if reader.mpp else ro.min_area_px
            vector = vectorise_mask(vec, scale, min_area=min_area, simplify=ro.simplify_px * scale)
            del vec
            writers.write_geojson(
                out_dir / files["geojson"],
                writers.geojson_features(vector.polygons, mpp=reader.mpp, source=name),
            )
            tiff_done.result()
            overlay_done.result()
        for r in pyramid:
            r.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    px_area0 = lv.downsample**2
    tumour_px = blender.positive_pixels * px_area0
    # the fraction counts tumour and tissue on the same pixels (every predicted tile's tumour is not all in
    # the tissue: tiles are chosen with a dilated mask, and a tile reaches past the tissue's edge)
    tissue_px = round(tissue_count * px_area0, 2)
    tumour_in_tissue_px = round(tumour_in_tissue * px_area0, 2)
    summary = summary_head(reader, "slide", model)
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
        overlap=inferer.overlap,
        threshold=ro.threshold,
        tissue_mask=ro.tissue_mask,
        no_tissue=bool(ro.tissue_mask and not tissue.any()),
        tiles_total=len(grid),
        tiles_predicted=len(tiles),
        tumour_area_px=tumour_px,
        tissue_area_px=tissue_px,
        tumour_in_tissue_area_px=tumour_in_tissue_px,
        tumour_area_mm2=None if mm2 is None else round(tumour_px * mm2, 6),
        tissue_area_mm2=None if mm2 is None else round(tissue_px * mm2, 6),
        tumour_in_tissue_area_mm2=None if mm2 is None else round(tumour_in_tissue_px * mm2, 6),
        tumour_fraction_of_tissue=round(tumour_in_tissue_px / tissue_px, 6) if tissue_px else 0.0,
        polygons=len(vector.polygons),
        **_polygon_accounting(vector, tumour_px, scale, min_area, mm2),
        outputs=files,
    )
    warning = area_warning(summary)
    if warning:
        summary["warnings"] = [warning]
    if summary["no_tissue"]:
        summary["note"] = "no tissue detected: nothing was predicted and the GeoJSON is empty"
    return PredictSummary(**summary)


def tissue_accounting(raster: RawRaster, tissue: np.ndarray, thr_u8: int, band: int = 256) -> tuple[int, int]:
    """(tissue pixels, tumour pixels inside the tissue) of the predicted ``raster``, counted on its pixels.

    ``tissue`` (a thumbnail-sized mask spanning the same slide) is laid over the raster by pixel centre; a
    raster pixel is tumour when its stored probability is at least ``thr_u8``. Both counts are of the same
    pixels, so the second never exceeds the first.
    """
    th, tw = tissue.shape
    ty = np.minimum(((np.arange(raster.height) + 0.5) * (th / raster.height)).astype(np.int64), th - 1)
    tx = np.minimum(((np.arange(raster.width) + 0.5) * (tw / raster.width)).astype(np.int64), tw - 1)
    # raster columns come in runs over one thumbnail column (tx never decreases): count per run
    starts = np.flatnonzero(np.r_[True, tx[1:] != tx[:-1]])
    run_tissue = tissue[:, tx[starts]]  # (th, runs)
    run_width = np.diff(np.r_[starts, raster.width])
    tissue_count = tumour_count = 0
    for y in range(0, raster.height, band):
        rows = raster.read_rows(y, y + band)
        inside = run_tissue[ty[y : y + rows.shape[0]]]  # (band, runs)
        tissue_count += int((inside * run_width).sum())
        tumour = np.add.reduceat(rows >= thr_u8, starts, axis=1, dtype=np.int64)
        tumour_count += int(tumour[inside].sum())
    return tissue_count, tumour_count


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


def area_warning(summary: dict[str, Any]) -> str | None:
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


def predict_image(
    reader: SlideReader,
    name: str,
    inferer: SlidingWindowInferer,
    model: ModelInfo,
    out_dir: Path,
    ro: ResolvedOptions,
    progress: PredictProgress,
) -> PredictSummary:
    """Predict an ordinary image into ``NAME_mask.png``, ``NAME_prob.png`` and ``NAME_overlay.png``."""
    w, h = reader.dimensions
    image = reader.read(0, 0, 0, w, h)
    if ro.resize_images:
        progress.on_tiles(1)
        s = ro.image_size
        small = writers.resize_to(image, s, s)
        p = inferer.predictor(small[None])[0]
        prob = np.asarray(writers.resize_to(np.clip(p, 0, 1).astype(np.float32), w, h), dtype=np.float32)
        prob_u8 = to_uint8(prob)
        n_tiles = 1
        progress.on_advance(1)
    else:
        tiles = inferer.grid(h, w)
        n_tiles = len(tiles)
        progress.on_tiles(n_tiles)
        with tempfile.TemporaryDirectory(prefix=f".{name}.work.", dir=out_dir) as tmp:
            raster = RawRaster(Path(tmp) / "prob.u8", h, w)
            inferer(ArrayReader(image), 0, tiles, raster, progress.on_advance)
            prob_u8 = raster.read_rows(0, h).copy()
            raster.close()
    mask = prob_u8 >= ro.threshold_u8
    files = {"mask": f"{name}_mask.png", "probability": f"{name}_prob.png", "overlay": f"{name}_overlay.png"}
    write_png(out_dir / files["mask"], mask.astype(np.uint8) * 255)
    write_png(out_dir / files["probability"], prob_u8)
    writers.write_overlay(out_dir / files["overlay"], image, mask)
    summary = summary_head(reader, "image", model)
    summary.update(
        # ordinary images are predicted at their own pixels (or resized to image_size): their mpp is not used
        mpp_used=None if ro.resize_images else reader.mpp,
        mpp_source=ro.image_mpp_source,
        resized_to_model=ro.resize_images,
        tile=None if ro.resize_images else inferer.tile,
        threshold=ro.threshold,
        tiles_predicted=n_tiles,
        tumour_area_px=int(mask.sum()),
        tumour_fraction=round(float(mask.mean()), 6),
        tumour_area_mm2=round(float(mask.sum()) * reader.mpp**2 / 1e6, 6) if reader.mpp else None,
        outputs=files,
    )
    return PredictSummary(**summary)
