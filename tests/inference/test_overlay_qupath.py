"""Outputs overlay the slide exactly, and annotations round-trip with QuPath's GeoJSON conventions.

A synthetic slide holds a known red rectangle (the stand-in model's tumour) at known level-0 coordinates; after
prediction the rectangle must be at the same level-0 coordinates in the GeoJSON, in the probability TIFF read
back with OpenSlide and scaled by its own resolution tags, and in the overlay, within 2 level-0 pixels per unit
of downsample.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely
import torch
from PIL import Image
from shapely.geometry import shape
from torch import nn

from teachseg.data.synth_slide import write_pyramid_rgb
from teachseg.data.tile_slides import TileOptions, load_annotations, tile_slide
from teachseg.inference.options import ModelInfo, PredictOptions
from teachseg.inference.predictor import Predictor
from teachseg.inference.run import predict_paths
from teachseg.inference.writers import AREA_UM2, TUMOUR_CLASS

MPP0 = 0.25
WIDTH, HEIGHT = 1603, 1210  # not multiples of any downsample: the TIFF's size is rounded
RECT = (600, 360, 1000, 1160)  # level-0 x0, y0, x1, y1 (half-open)


class RedNotBlue(nn.Module):
    """Stand-in model: sigmoid(output) == red x (1 - blue), so tumour (red, little blue) is found and the
    white beyond the slide's edge, which readers pad with, is not."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = (x[:, :1] * (1 - x[:, 2:3])).float().clamp(1e-6, 1 - 1e-6)
        return torch.log(p) - torch.log1p(-p)


def _echo(mpp: float) -> tuple[Predictor, ModelInfo]:
    predictor = Predictor(RedNotBlue(), mean=(0, 0, 0), std=(1, 1, 1), device="cpu", precision="fp32")
    return predictor, ModelInfo("echo-red", "echo", "none", image_size=128, mpp=mpp, threshold=0.5)


def _rgb(tumour: np.ndarray) -> np.ndarray:
    rgb = np.where(tumour[..., None], np.uint8([235, 80, 40]), np.uint8([60, 80, 150]))
    return rgb.astype(np.uint8)


@pytest.fixture(scope="module")
def rect_slide(tmp_path_factory) -> Path:
    tumour = np.zeros((HEIGHT, WIDTH), bool)
    x0, y0, x1, y1 = RECT
    tumour[y0:y1, x0:x1] = True
    path = tmp_path_factory.mktemp("rect") / "rect.tif"
    return write_pyramid_rgb(
        path, _rgb(tumour), mpp=MPP0, tile=128, min_side=128, factor=4, compression="zlib"
    )


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


@pytest.mark.parametrize(
    ("model_mpp", "resampled"),
    [(0.5, True), (1.0, False)],  # a virtual level at downsample 2; pyramid level 1 (downsample 4) as it is
)
def test_known_rectangle_lines_up_in_geojson_tiff_and_overlay(tmp_path, rect_slide, model_mpp, resampled):
    import openslide

    out = tmp_path / "out"
    opts = PredictOptions(tissue_mask=False, min_area_um2=20.0, thumb_max_side=400)
    (summary,) = predict_paths(*_echo(model_mpp), [rect_slide], out, opts)
    assert summary["resampled"] is resampled
    ds = summary["predict_downsample"]
    assert ds == pytest.approx(model_mpp / MPP0, rel=0.01)  # a real level: its size is rounded

    # GeoJSON: level-0 pixels
    fc = json.loads((out / "rect.geojson").read_text())
    union = shapely.union_all([shape(f["geometry"]) for f in fc["features"]])
    assert np.allclose(union.bounds, RECT, atol=2 * ds)

    # probability TIFF: OpenSlide reads its resolution, which scales it onto level 0 with no other input
    with openslide.OpenSlide(str(out / "rect_prob.tif")) as tif:
        mpp_x = float(tif.properties[openslide.PROPERTY_NAME_MPP_X])
        mpp_y = float(tif.properties[openslide.PROPERTY_NAME_MPP_Y])
        w, h = tif.dimensions
        prob = np.asarray(tif.read_region((0, 0), 0, (w, h)))[..., 0]
    assert w * mpp_x == pytest.approx(WIDTH * MPP0, rel=1e-6)  # the TIFF spans the slide's level-0 extent
    assert h * mpp_y == pytest.approx(HEIGHT * MPP0, rel=1e-6)
    bx0, by0, bx1, by1 = _bbox(prob >= 128)
    sx, sy = mpp_x / MPP0, mpp_y / MPP0
    assert np.allclose([bx0 * sx, by0 * sy, bx1 * sx, by1 * sy], RECT, atol=2 * ds)
    assert summary["probability_mpp"] == pytest.approx([mpp_x, mpp_y], rel=1e-6)

    # overlay: its outline is drawn in the overlay colour; it spans the slide, so its scale is its size
    overlay = np.asarray(Image.open(out / "rect_overlay.png"))[..., :3]
    edge = np.all(overlay == (0, 200, 60), axis=-1)
    ox, oy = WIDTH / overlay.shape[1], HEIGHT / overlay.shape[0]
    assert summary["overlay_downsample"] == pytest.approx(ox)
    bx0, by0, bx1, by1 = _bbox(edge)
    assert np.allclose([bx0 * ox, by0 * oy, bx1 * ox, by1 * oy], RECT, atol=2 * max(ox, oy, ds))


# ---------------------------------------------------------------- QuPath round trip

#: A QuPath 0.5 "Export objects as GeoJSON" file: a tumour with a hole, a tumour MultiPolygon (two parts, one
#: with a hole), a stroma region (labelled negative) and an unclassified annotation.
QUPATH_EXPORT = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "id": "4d1b5b0e-0c1e-4d0e-9a77-2d0c4a4a0001",
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [[100, 100], [600, 100], [600, 500], [100, 500], [100, 100]],
                    [[250, 200], [420, 200], [420, 380], [250, 380], [250, 200]],
                ],
            },
            "properties": {
                "objectType": "annotation",
                "classification": {"name": "Tumor", "color": [200, 0, 0]},
                "measurements": {"Area \u00b5m^2": 41350.0},
            },
        },
        {
            "type": "Feature",
            "id": "4d1b5b0e-0c1e-4d0e-9a77-2d0c4a4a0002",
            "geometry": {
                "type": "MultiPolygon",
                "coordinates": [
                    [[[700, 150], [950, 150], [950, 400], [700, 400], [700, 150]]],
                    [
                        [[150, 650], [900, 650], [900, 950], [150, 950], [150, 650]],
                        [[400, 720], [640, 720], [640, 880], [400, 880], [400, 720]],
                    ],
                ],
            },
            "properties": {
                "objectType": "annotation",
                "classification": {"name": "Tumor", "color": [200, 0, 0]},
            },
        },
        {
            "type": "Feature",
            "id": "4d1b5b0e-0c1e-4d0e-9a77-2d0c4a4a0003",
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[650, 500], [1000, 500], [1000, 620], [650, 620], [650, 500]]],
            },
            "properties": {
                "objectType": "annotation",
                "classification": {"name": "Stroma", "color": [150, 200, 150]},
            },
        },
        {
            "type": "Feature",
            "id": "4d1b5b0e-0c1e-4d0e-9a77-2d0c4a4a0004",
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[20, 20], [60, 20], [60, 60], [20, 60], [20, 20]]],
            },
            "properties": {"objectType": "annotation"},
        },
    ],
}
SIDE = 1024


def _tile_masks(slide: Path, geojson: Path, out: Path) -> dict[str, np.ndarray]:
    result = tile_slide(
        slide,
        out,
        geojson,
        TileOptions(size=256, level=0, min_tissue=0.0, classes=["Tumor"], negative=["Stroma"]),
    )
    manifest = json.loads(Path(result["manifest"]).read_text())
    return {
        t["name"]: np.asarray(Image.open(out / "masks" / f"{t['name']}.png")) > 0
        for t in manifest["tiles"]
        if t["labelled"]
    }


def test_qupath_geojson_round_trip_both_directions(tmp_path):
    from teachseg.wsi.polygons import rasterise_polygons

    export = tmp_path / "qupath_export.geojson"
    export.write_text(json.dumps(QUPATH_EXPORT))

    # QuPath -> teachseg: holes, MultiPolygons and class names are read
    tumour, negative = load_annotations(export, classes=["Tumor"], negative=["Stroma"])
    assert len(tumour) == 3 and len(negative) == 1
    assert sum(len(p.interiors) for p in tumour) == 2
    truth = rasterise_polygons(tumour, (SIDE, SIDE), 0, 0, 1.0).astype(bool)
    slide = write_pyramid_rgb(
        tmp_path / "annotated.tif", _rgb(truth), mpp=0.5, tile=128, min_side=128, compression="zlib"
    )
    from_export = _tile_masks(slide, export, tmp_path / "tiles_export")
    assert len(from_export) == 16  # the stroma tile on its own is labelled too (negative)
    for name, mask in from_export.items():
        x, y = (int(v[1:]) for v in name.split("_")[-2:])
        assert np.array_equal(mask, truth[y : y + 256, x : x + 256])

    # teachseg -> QuPath: predict's GeoJSON follows QuPath's conventions and holds the same tumour
    opts = PredictOptions(tissue_mask=False, min_area_um2=20.0)
    (summary,) = predict_paths(*_echo(0.5), [slide], tmp_path / "pred", opts)
    predicted = tmp_path / "pred" / "annotated.geojson"
    fc = json.loads(predicted.read_text(encoding="utf-8"))
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 3
    for f in fc["features"]:
        props = f["properties"]
        assert props["objectType"] == "annotation"
        assert props["classification"] == {"name": TUMOUR_CLASS, "color": [200, 0, 0]}
        assert props["measurements"][AREA_UM2] == pytest.approx(shape(f["geometry"]).area * 0.25, rel=1e-3)
        assert f["geometry"]["type"] == "Polygon"
    assert "Area \u00b5m^2" in predicted.read_text(encoding="utf-8")
    got = shapely.union_all([shape(f["geometry"]) for f in fc["features"]])
    want = shapely.union_all(tumour)
    assert got.symmetric_difference(want).area < 1e-3 * want.area
    total = sum(f["properties"]["measurements"][AREA_UM2] for f in fc["features"])
    assert total == pytest.approx(summary["geojson_area_mm2"] * 1e6, rel=1e-3)

    # ... and reads back through `tile` (same class name) to the very masks the QuPath export gave
    from_predicted = _tile_masks(slide, predicted, tmp_path / "tiles_pred")
    for name, mask in from_predicted.items():
        assert np.array_equal(mask, from_export[name]), name
    assert set(from_export) - set(from_predicted) == {n for n, m in from_export.items() if not m.any()}
