"""Prediction on a real whole-slide image (CMU-1-Small-Region.svs from ../shared/data/wsi)."""

import json

import pytest
from shapely.geometry import box, shape

from .conftest import CMU_SMALL


@pytest.mark.skipif(not CMU_SMALL.is_file(), reason=f"real slide not found at {CMU_SMALL}")
def test_predict_real_svs(tmp_path, model_dir):
    import openslide

    from teachseg.inference.options import PredictOptions
    from teachseg.inference.run import load_predictor, predict_paths

    pred, info = load_predictor(model_dir)
    # threshold just under the untrained model's typical output, so polygons exist
    opts = PredictOptions(tile=256, batch_size=8, threshold=0.45, min_area_um2=50.0)
    (summary,) = predict_paths(pred, info, [CMU_SMALL], tmp_path, opts)
    src = openslide.OpenSlide(str(CMU_SMALL))
    w, h = src.dimensions
    prob = openslide.OpenSlide(str(tmp_path / "CMU-1-Small-Region_prob.tif"))
    assert prob.dimensions == (w, h)
    assert float(prob.properties["openslide.mpp-x"]) == pytest.approx(
        float(src.properties["openslide.mpp-x"]), rel=1e-3
    )
    assert summary["tissue_area_mm2"] > 0 and summary["tiles_predicted"] <= summary["tiles_total"]
    fc = json.loads((tmp_path / "CMU-1-Small-Region.geojson").read_text())
    frame = box(0, 0, w, h).buffer(1)
    polys = [shape(f["geometry"]) for f in fc["features"]]
    assert len(polys) == summary["polygons"]
    for p in polys:
        assert p.is_valid and frame.contains(p)
