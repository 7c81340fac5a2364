"""Slides are predicted at the model's resolution, whatever their pyramid, and say where the mpp came from.

A stand-in model (sigmoid(output) == red) finds a red disc and a red square on a blue background striped at
0.25 um (red 0 / 200: 100 on average, below the threshold once seen at 0.5 um/px, the model's resolution).
A slide scanned at 0.25 / 1.0 / 4.0 um/px (or 0.2 / 0.8 / 3.2) must give the tumour found on the same tissue
scanned at exactly 0.5 um/px.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.affinity import scale as scale_geom
from shapely.geometry import shape

from teachseg.data.synth_slide import write_pyramid_rgb
from teachseg.errors import DataError
from teachseg.inference.options import ModelInfo, PredictOptions
from teachseg.inference.predictor import Predictor
from teachseg.inference.run import predict_paths
from teachseg.wsi.readers import ArrayReader, open_slide
from teachseg.wsi.resolution import ResampledReader, plan_resolution
from tests.inference.conftest import EchoRed

EXTENT_UM = 400.0
MODEL_MPP = 0.5


def _render(mpp0: float):
    """An analytic slide: ``render(ds, y, x, h, w)`` with 4 x 4 samples per pixel (stripes averaged >= 0.5 um)."""

    def render(ds: int, y: int, x: int, h: int, w: int) -> np.ndarray:
        p = mpp0 * ds
        sub = (np.arange(4) + 0.5) / 4
        ys = ((np.arange(h)[:, None] + y) + sub[None, :]).ravel() * p  # um, (h*4,)
        xs = ((np.arange(w)[:, None] + x) + sub[None, :]).ravel() * p
        yy, xx = np.meshgrid(ys, xs, indexing="ij")
        disc = (yy - 150) ** 2 + (xx - 150) ** 2 < 90**2
        square = (yy >= 40) & (yy < 160) & (xx >= 230) & (xx < 350)
        stripes = 100.0 if p >= 0.5 else np.where(np.floor(xx / 0.25) % 2 == 0, 0.0, 200.0)
        red = np.where(disc | square, 235.0, stripes)
        red = red.reshape(h, 4, w, 4).mean(axis=(1, 3))
        rgb = np.stack([red, np.full_like(red, 60.0), np.full_like(red, 150.0)], axis=-1)
        outside = ((np.arange(h) + y) * p >= EXTENT_UM)[:, None] | ((np.arange(w) + x) * p >= EXTENT_UM)[
            None, :
        ]
        rgb[outside] = 255
        return np.rint(rgb).astype(np.uint8)

    return render


def _slide(path: Path, mpp0: float, factor: int = 4, write_mpp: bool = True, **kw) -> Path:
    side = int(round(EXTENT_UM / mpp0))
    return write_pyramid_rgb(
        path,
        _render(mpp0),
        side,
        side,
        mpp=mpp0 if write_mpp else None,
        tile=128,
        min_side=64,
        factor=factor,
        **kw,
    )


def _echo(mpp: float | None = MODEL_MPP) -> tuple[Predictor, ModelInfo]:
    predictor = Predictor(EchoRed(), mean=(0, 0, 0), std=(1, 1, 1), device="cpu", precision="fp32")
    info = ModelInfo(folder="echo-red", arch="echo", encoder="none", image_size=128, mpp=mpp, threshold=0.5)
    return predictor, info


def _opts(**kw) -> PredictOptions:
    return PredictOptions(batch_size=8, tissue_mask=False, min_area_um2=20.0, **kw)


def _tumour(geojson: Path, to_um: float):
    """The GeoJSON's tumour in micrometres (level-0 pixels x level-0 um/px)."""
    fc = json.loads(geojson.read_text())
    union = shapely.union_all([shape(f["geometry"]) for f in fc["features"]])
    return scale_geom(union, to_um, to_um, origin=(0, 0))


def _dice(a, b) -> float:
    return 2 * a.intersection(b).area / (a.area + b.area)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[dict, object]:
    """The tumour found on the tissue scanned at exactly the model's resolution."""
    tmp = tmp_path_factory.mktemp("ref")
    path = _slide(tmp / "ref.tif", MODEL_MPP, factor=2)
    (summary,) = predict_paths(*_echo(), [path], tmp / "out", _opts())
    assert not summary["resampled"] and summary["level"] == 0
    tumour = _tumour(tmp / "out" / "ref.geojson", MODEL_MPP)
    truth = shapely.Point(150, 150).buffer(90, 256).union(shapely.box(230, 40, 350, 160))
    assert _dice(tumour, truth) > 0.98  # the stand-in finds the drawn tumour
    return summary, tumour


@pytest.mark.parametrize("mpp0", [0.25, 0.2])
def test_bracketing_pyramid_matches_the_model_resolution(tmp_path, reference, mpp0):
    import tifffile

    path = _slide(tmp_path / "scan.tif", mpp0)
    with open_slide(path) as r:
        assert [round(r.level_mpp(i), 3) for i in range(len(r.levels))] == [
            round(mpp0 * f, 3) for f in (1, 4, 16)
        ]
    (summary,) = predict_paths(*_echo(), [path], tmp_path / "out", _opts())
    # the finest level is the only one at least as fine as 0.5 um/px; it is resized to the model's scale
    assert summary["level"] == 0 and summary["resampled"]
    assert summary["mpp_used"] == pytest.approx(MODEL_MPP) and summary["mpp_source"] == "slide metadata"
    assert summary["predict_downsample"] == pytest.approx(MODEL_MPP / mpp0)
    side = int(round(EXTENT_UM / MODEL_MPP))
    assert (summary["predict_width"], summary["predict_height"]) == (side, side)
    with tifffile.TiffFile(tmp_path / "out" / "scan_prob.tif") as tf:
        assert tf.pages[0].shape[:2] == (side, side)
    tumour = _tumour(tmp_path / "out" / "scan.geojson", mpp0)  # level-0 pixels of this scan -> um
    assert _dice(tumour, reference[1]) >= 0.95
    area_mm2 = summary["tumour_area_mm2"]
    assert area_mm2 == pytest.approx(reference[0]["tumour_area_mm2"], rel=0.03)


def test_level_zero_as_is_sees_the_wrong_scale(tmp_path, reference):
    """What the resizing fixes: level 0 at 0.25 um/px read as it is resolves the stripes into tumour."""
    path = _slide(tmp_path / "scan.tif", 0.25)
    (summary,) = predict_paths(*_echo(), [path], tmp_path / "out", _opts(level=0))
    assert not summary["resampled"] and summary["mpp_used"] == pytest.approx(0.25)
    assert summary["tumour_area_mm2"] > 1.5 * reference[0]["tumour_area_mm2"]


def test_plan_resolution_choices():
    def reader(mpp0: float | None, downsamples: tuple[float, ...]):
        r = ArrayReader(np.zeros((64, 64, 3), np.uint8), Path("s.tif"), mpp0)
        from teachseg.wsi.readers import Level

        r.levels = [Level(i, int(64 / d), int(64 / d), d) for i, d in enumerate(downsamples)]
        return r

    # levels at 0.25 / 1.0 / 4.0: the log distances to 0.5 tie; the finer level is read and halved
    plan = plan_resolution(reader(0.25, (1, 4, 16)), 0.5)
    assert (plan.level, plan.downsample, plan.mpp) == (0, 2.0, 0.5)
    # a level within 2% of the model's resolution is read as it is (scanners round their um/px)
    plan = plan_resolution(reader(0.2527, (1, 2, 4)), 0.5)
    assert (plan.level, plan.downsample) == (1, 2.0) and plan.mpp == pytest.approx(0.5054)
    # coarser than the model everywhere: level 0, enlarged
    plan = plan_resolution(reader(1.0, (1, 4)), 0.5)
    assert (plan.level, plan.downsample) == (0, 0.5)
    assert plan_resolution(reader(0.25, (1, 4)), 2.0).level == 1
    assert plan_resolution(reader(0.25, (1, 4)), None).source == "model has none"
    assert plan_resolution(reader(0.25, (1, 4)), 0.5, ignore_mpp=True).downsample == 1
    assert plan_resolution(reader(None, (1, 4)), 0.5, level=1).source == "--level"
    with pytest.raises(DataError, match=r"s\.tif: .*no resolution.*--slide-mpp VALUE.*--ignore-mpp"):
        plan_resolution(reader(None, (1, 4)), 0.5)


def test_resampled_reader_is_exact_on_flat_and_aligned_content():
    # a 2:1 shrink of 2 x 2 blocks is their mean; borders outside the image are white, as with every reader
    blocks = (np.arange(16, dtype=np.uint8) * 10).reshape(4, 4)
    base = np.repeat(np.repeat(blocks, 2, axis=0), 2, axis=1)[..., None].repeat(3, axis=-1)
    view = ResampledReader(ArrayReader(base, mpp=0.25), 0, 2.0)
    assert view.dimensions == (4, 4) and view.level_mpp(0) == pytest.approx(0.5)
    assert np.array_equal(view.read(0, 0, 0, 4, 4)[..., 0], np.arange(16).reshape(4, 4) * 10)
    assert (view.read(0, 3, 3, 2, 2)[1:, :] == 255).all()


def test_unknown_resolution(tmp_path):
    path = _slide(tmp_path / "nompp.tif", 0.25, write_mpp=False)
    with pytest.raises(DataError, match="nompp.tif: the slide records no resolution.*--slide-mpp"):
        predict_paths(*_echo(), [path], tmp_path / "a", _opts())
    (s,) = predict_paths(*_echo(), [path], tmp_path / "b", _opts(slide_mpp=0.25))
    assert s["mpp_source"] == "--slide-mpp" and s["mpp"] == 0.25 and s["mpp_used"] == pytest.approx(0.5)
    assert s["resampled"] and s["tumour_area_mm2"] > 0
    (s,) = predict_paths(*_echo(), [path], tmp_path / "c", _opts(ignore_mpp=True))
    assert s["mpp_source"] == "ignored" and s["mpp_used"] is None and s["level"] == 0 and not s["resampled"]


def test_model_without_mpp_predicts_level_zero_and_says_so_once(tmp_path):
    a = _slide(tmp_path / "a.tif", 0.25)
    b = _slide(tmp_path / "b.tif", 0.25, write_mpp=False)
    said: list[str] = []
    summaries = predict_paths(*_echo(None), [a, b], tmp_path / "out", _opts(), log=said.append)
    assert [s["mpp_source"] for s in summaries] == ["model has none", "model has none"]
    assert [s["level"] for s in summaries] == [0, 0] and not any(s["resampled"] for s in summaries)
    assert [s["mpp_used"] for s in summaries] == [0.25, None]
    assert sum("no resolution" in m for m in said) == 1


@pytest.mark.parametrize("suffix", [".svs", ".tif"])
def test_aperio_jpeg2000(tmp_path, reference, suffix):
    """Aperio JPEG2000 (33005): an .svs through OpenSlide's Aperio reader, a plain TIFF through tiffslide."""
    import tifffile

    desc = f"Aperio Image Library v12.0.15 \r\n1600x1600 [0,0 1600x1600] (128x128) J2K/KDU Q=70|MPP = {0.25}"
    path = _slide(
        tmp_path / f"j2k{suffix}", 0.25, compression=33005, description=desc if suffix == ".svs" else None
    )
    with tifffile.TiffFile(path) as tf:
        assert tf.pages[0].compression == 33005
    with open_slide(path) as r:
        assert r.backend == ("openslide" if suffix == ".svs" else "tiffslide")
        assert r.mpp == pytest.approx(0.25) and len(r.levels) == 3
        assert np.array_equal(r.read(0, 500, 100, 64, 64), _render(0.25)(1, 100, 500, 64, 64))
    (summary,) = predict_paths(*_echo(), [path], tmp_path / "out", _opts())
    assert summary["reader"] == r.backend and summary["resampled"]
    assert _dice(_tumour(tmp_path / "out" / "j2k.geojson", 0.25), reference[1]) >= 0.95
