import json

import numpy as np
import pytest
from shapely.geometry import shape

from teachseg.inference.blending import RawRaster
from teachseg.inference.writers import (
    build_pyramid,
    geojson_features,
    overlay,
    write_pyramid_tiff,
)
from teachseg.wsi.polygons import mask_polygons, vectorise_mask


def test_polygons_keep_holes_and_drop_specks():
    m = np.zeros((100, 100), np.uint8)
    m[10:60, 10:60] = 1
    m[25:40, 25:40] = 0  # hole
    m[80, 80] = 1  # speck
    polys = vectorise_mask(m, scale=2.0, min_area=50.0, simplify=1.0).polygons
    assert len(polys) == 1
    p = polys[0]
    assert p.is_valid and len(p.interiors) == 1
    assert p.area == pytest.approx((50 * 50 - 15 * 15) * 4, rel=1e-3)
    assert p.bounds == pytest.approx((20, 20, 120, 120))


def test_geojson_is_qupath_shaped():
    m = np.zeros((40, 40), np.uint8)
    m[5:20, 5:30] = 1
    fc = json.loads(json.dumps(geojson_features(mask_polygons(m, 1.0))))
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 1
    f = fc["features"][0]
    assert f["properties"]["objectType"] == "annotation"
    assert f["properties"]["classification"]["name"] == "Tumor"
    assert shape(f["geometry"]).is_valid
    assert geojson_features([]) == {"type": "FeatureCollection", "features": []}


def test_geojson_ids_are_unique_and_the_same_on_every_run():
    import uuid

    m = np.zeros((60, 60), np.uint8)
    m[5:20, 5:30] = 1
    m[30:50, 30:50] = 1
    m[40:45, 5:10] = 1
    polys = mask_polygons(m, 1.0)
    a = geojson_features(polys, source="slide-a")
    ids = [f["id"] for f in a["features"]]
    assert len(ids) == 3 and len(set(ids)) == 3
    assert all(uuid.UUID(i).version == 5 for i in ids)
    # a rerun writes the same ids (outputs byte-identical between runs and between one process and a cluster)
    assert json.dumps(geojson_features(mask_polygons(m.copy(), 1.0), source="slide-a")) == json.dumps(a)
    # another slide, or another outline at the same place, gets other ids
    assert not set(ids) & {f["id"] for f in geojson_features(polys, source="slide-b")["features"]}
    m[5, 5] = 0
    moved = geojson_features(mask_polygons(m, 1.0), source="slide-a")["features"]
    assert [f["id"] == g for f, g in zip(moved, ids, strict=True)].count(False) == 1


def test_pyramid_tiff_opens_in_openslide_and_tiffslide(tmp_path):
    import openslide
    import tiffslide

    base = RawRaster(tmp_path / "b.u8", 700, 900)
    ramp = np.tile(np.arange(900) % 256, (700, 1)).astype(np.uint8)
    base.write_rows(0, ramp)
    levels = build_pyramid(base, tmp_path, min_side=256)
    out = write_pyramid_tiff(tmp_path / "x_prob.tif", levels, mpp=0.5)
    s = openslide.OpenSlide(str(out))
    assert s.level_dimensions[0] == (900, 700) and s.level_count == len(levels)
    assert float(s.properties["openslide.mpp-x"]) == pytest.approx(0.5, rel=1e-3)
    region = np.asarray(s.read_region((0, 0), 0, (900, 700)))[..., 0]
    np.testing.assert_array_equal(region, ramp)
    t = tiffslide.TiffSlide(str(out))
    assert t.dimensions == (900, 700)
    assert not list(tmp_path.glob(".*tmp*"))


def test_overlay_draws_outline():
    rgb = np.full((50, 50, 3), 200, np.uint8)
    m = np.zeros((50, 50), bool)
    m[10:40, 10:40] = True
    o = overlay(rgb, m)
    assert o.shape == rgb.shape and (o[10, 20] != 200).any() and (o[0, 0] == 200).all()
