"""End-to-end prediction with a tiny real model on generated slides and images."""

import json

import numpy as np
import pytest
from shapely.geometry import box, shape

from teachseg.inference.options import PredictOptions
from teachseg.inference.outputs import is_complete
from teachseg.inference.run import load_predictor, predict_paths

OPTS = {"batch_size": 4}


@pytest.fixture(scope="module")
def predictor(model_dir):
    return load_predictor(model_dir)


def _geojson_polygons(path):
    fc = json.loads(path.read_text())
    assert fc["type"] == "FeatureCollection"
    return [shape(f["geometry"]) for f in fc["features"]]


def test_slide_outputs(tmp_path, predictor, slide_path):
    import openslide

    pred, info = predictor
    (summary,) = predict_paths(
        pred,
        info,
        [slide_path],
        tmp_path,
        PredictOptions(threshold=0.45, min_area_um2=20.0, **OPTS),
    )
    assert summary["kind"] == "slide" and not summary["no_tissue"]
    assert 0 < summary["tiles_predicted"] < summary["tiles_total"]  # tissue-only tiles
    assert summary["tissue_area_mm2"] == pytest.approx(0.4 * 1024 * 1024 * 0.25 / 1e6, rel=0.35)
    s = openslide.OpenSlide(str(tmp_path / "synth_prob.tif"))
    assert s.dimensions == (1024, 1024) and float(s.properties["openslide.mpp-x"]) == pytest.approx(
        0.5, rel=1e-3
    )
    frame = box(0, 0, 1024, 1024)
    for p in _geojson_polygons(tmp_path / "synth.geojson"):
        assert p.is_valid and p.geom_type == "Polygon" and frame.buffer(1).contains(p)
    assert (tmp_path / "synth_overlay.png").is_file()
    assert is_complete(tmp_path, "synth")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no work files left


def test_level_choice_from_model_mpp(tmp_path, predictor, slide_path):
    pred, info = predictor
    (summary,) = predict_paths(pred, info, [slide_path], tmp_path, PredictOptions(mpp=1.0, **OPTS))
    assert summary["level"] == 1 and summary["level_mpp"] == pytest.approx(1.0)
    import tiffslide

    assert tiffslide.TiffSlide(str(tmp_path / "synth_prob.tif")).dimensions == (512, 512)


def test_no_tissue_gives_empty_geojson(tmp_path, predictor, blank_slide):
    pred, info = predictor
    (summary,) = predict_paths(pred, info, [blank_slide], tmp_path, PredictOptions(**OPTS))
    assert summary["no_tissue"] and summary["tiles_predicted"] == 0 and summary["tumour_area_mm2"] == 0
    assert "no tissue" in summary["note"]
    assert _geojson_polygons(tmp_path / "blank.geojson") == []


def test_ordinary_image_and_resume(tmp_path, predictor):
    from PIL import Image

    pred, info = predictor
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8)).save(
        src / "frame.png"
    )
    out = tmp_path / "out"
    for resize in (True, False):
        (s,) = predict_paths(pred, info, [src], out, PredictOptions(resize=resize, **OPTS))
        assert s["kind"] == "image" and s["resized_to_model"] is resize
        mask = np.asarray(Image.open(out / "frame_mask.png"))
        assert mask.shape == (90, 120) and set(np.unique(mask)) <= {0, 255}
        assert np.asarray(Image.open(out / "frame_prob.png")).shape == (90, 120)
        assert np.asarray(Image.open(out / "frame_overlay.png")).shape == (90, 120, 3)
    before = (out / "frame_summary.json").stat().st_mtime_ns
    predict_paths(pred, info, [src], out, PredictOptions(resume=True, **OPTS))
    assert (out / "frame_summary.json").stat().st_mtime_ns == before


def test_interrupted_run_leaves_no_partial_files(tmp_path, predictor, slide_path):
    pred, info = predictor
    calls = {"n": 0}

    def failing(tiles):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return pred(tiles)

    with pytest.raises(KeyboardInterrupt):
        predict_paths(failing, info, [slide_path], tmp_path, PredictOptions(**OPTS))  # type: ignore[arg-type]
    # nothing of the slide; only the run's identity, recorded before its first input
    assert [p.name for p in tmp_path.iterdir()] == ["predict_identity.json"]


def test_one_bad_input_does_not_stop_the_others(tmp_path, predictor, slide_path):
    from teachseg.errors import DataError

    pred, info = predictor
    src = tmp_path / "in"
    src.mkdir()
    (src / "broken.svs").write_bytes(b"\0" * 64)
    out = tmp_path / "out"
    with pytest.raises(DataError, match="1 of 2 inputs could not be read"):
        predict_paths(pred, info, [src, slide_path], out, PredictOptions(level=1, **OPTS))
    assert is_complete(out, "synth") and not (out / "broken_summary.json").exists()


def test_summary_records_the_input_as_an_absolute_path(tmp_path, predictor, slide_path, monkeypatch):
    """`teachseg view` reads the slide back from the summary: a relative input must still lead to it from any
    working folder."""
    pred, info = predictor
    monkeypatch.chdir(slide_path.parent)
    (summary,) = predict_paths(
        pred, info, [type(slide_path)(slide_path.name)], tmp_path, PredictOptions(**OPTS)
    )
    recorded = type(slide_path)(summary["input"])
    assert recorded.is_absolute() and recorded == slide_path.resolve()
