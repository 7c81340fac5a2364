"""Outputs you can trust (issue 31): every output set names the prediction that made it, ``--resume`` keeps
only complete sets of this run's identity and refuses a folder of another, a failing slide leaves no mixed
set, and the tumour fraction of the tissue is a fraction."""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from teachseg.data.synth_slide import synthetic_slide
from teachseg.errors import ConfigError, DataError
from teachseg.inference import writers
from teachseg.inference.blending import RawRaster
from teachseg.inference.identity import prediction_fields
from teachseg.inference.options import ModelInfo, PredictOptions, resolve_options
from teachseg.inference.outputs import is_complete
from teachseg.inference.pipelines import tissue_accounting
from teachseg.inference.run import predict_paths

from .test_golden_outputs import _red

M1 = ModelInfo(
    folder="m1",
    arch="unet",
    encoder="resnet18",
    image_size=64,
    mpp=0.5,
    threshold=0.45,
    weights_sha256="1" * 64,
)
M2 = replace(M1, folder="m2", weights_sha256="2" * 64)
OPTS = PredictOptions(batch_size=4, min_area_um2=20.0)
RESUME = replace(OPTS, resume=True)


def _inverse(images: np.ndarray) -> np.ndarray:
    """The second model: another predictor, other outputs."""
    return 1.0 - _red(images)


@pytest.fixture(scope="module")
def slides(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    src = tmp_path_factory.mktemp("cohort")
    paths = [src / "a.tif", src / "b.tif"]
    synthetic_slide(paths[0], 384, tissue_fraction=0.5, mpp=0.5, seed=3, tile=128)
    synthetic_slide(paths[1], 320, tissue_fraction=0.5, mpp=0.5, seed=4, tile=128)
    return paths


@pytest.fixture(scope="module")
def by_m2(slides: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cohort predicted by the second model, uninterrupted."""
    out = tmp_path_factory.mktemp("m2")
    predict_paths(_inverse, M2, slides, out, OPTS)
    return out


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _summary(out: Path, name: str) -> dict:
    return json.loads((out / f"{name}_summary.json").read_text())


def _tiff_pixels(path: Path) -> np.ndarray:
    import tifffile

    return tifffile.imread(path)


def _failing_geojson_for(monkeypatch: pytest.MonkeyPatch, stem: str) -> None:
    """The GeoJSON writer fails on ``stem`` (the TIFF and the overlay are written beside it, and renamed
    into place before the error comes out)."""
    real = writers.write_geojson

    def write_geojson(path, collection):
        if Path(path).stem == stem:
            raise RuntimeError("the GeoJSON writer failed")
        return real(path, collection)

    monkeypatch.setattr(writers, "write_geojson", write_geojson)


# ------------------------------------------------------------------------------------------------ item 1


def test_a_failed_re_prediction_leaves_no_mixed_set_and_resume_redoes_it(
    slides, by_m2, tmp_path, monkeypatch
):
    out = tmp_path / "out"
    predict_paths(_red, M1, slides, out, OPTS)
    # predicted again with the second model: b fails after its TIFF and overlay were renamed into place
    _failing_geojson_for(monkeypatch, "b")
    with pytest.raises(DataError, match="1 of 2 inputs"):
        predict_paths(_inverse, M2, slides, out, OPTS)
    assert not list(out.glob("b[._]*")), "the failed slide left outputs (a mix of two models)"
    assert [Path(r["slide"]).name for r in _rows(out / "failures.csv")] == ["b.tif"]
    assert [r["name"] for r in _rows(out / "cohort.csv")] == ["a"]

    # --resume predicts b again (nothing of it looks finished), with the second model; its row goes
    monkeypatch.undo()
    log: list[str] = []
    predict_paths(_inverse, M2, slides, out, RESUME, log=log.append)
    assert "a: complete, skipped (--resume)" in log and "b: complete, skipped (--resume)" not in log
    assert (
        _summary(out, "b")["identity"] == _summary(by_m2, "b")["identity"] == _summary(out, "a")["identity"]
    )
    for name in ("a", "b"):
        assert np.array_equal(
            _tiff_pixels(out / f"{name}_prob.tif"), _tiff_pixels(by_m2 / f"{name}_prob.tif")
        )
        assert (out / f"{name}.geojson").read_text() == (by_m2 / f"{name}.geojson").read_text()
    assert not (out / "failures.csv").exists()  # b succeeded


def test_a_failing_slide_keeps_its_failures_row_until_it_succeeds(slides, tmp_path, monkeypatch):
    out = tmp_path / "out"
    _failing_geojson_for(monkeypatch, "b")
    with pytest.raises(DataError, match="1 of 2 inputs"):
        predict_paths(_red, M1, slides, out, OPTS)
    assert not list(out.glob("b[._]*"))
    # a later run of a alone, without failures, does not forget that b failed
    predict_paths(_red, M1, slides[:1], out, RESUME)
    assert [Path(r["slide"]).name for r in _rows(out / "failures.csv")] == ["b.tif"]
    with pytest.raises(DataError, match="1 of 2 inputs"):  # b fails again: one row, the new one
        predict_paths(_red, M1, slides, out, RESUME)
    assert [Path(r["slide"]).name for r in _rows(out / "failures.csv")] == ["b.tif"]
    monkeypatch.undo()
    predict_paths(_red, M1, slides, out, RESUME)
    assert not (out / "failures.csv").exists() and is_complete(out, "b")


def test_a_lone_slide_failing_part_way_leaves_nothing_of_itself(slides, tmp_path, monkeypatch):
    out = tmp_path / "out"
    predict_paths(_red, M1, slides[1:], out, OPTS)
    _failing_geojson_for(monkeypatch, "b")
    with pytest.raises(RuntimeError, match="GeoJSON writer failed"):
        predict_paths(_inverse, M2, slides[1:], out, OPTS)
    assert not list(out.glob("b[._]*"))


# ------------------------------------------------------------------------------------------------ item 2


def test_resume_refuses_another_model_or_settings_naming_the_keys(slides, by_m2, tmp_path):
    out = tmp_path / "out"
    predict_paths(_red, M1, slides, out, OPTS)
    with pytest.raises(ConfigError) as info:
        predict_paths(_red, M1, slides, out, replace(RESUME, threshold=0.6, tile=96))
    message = str(info.value)
    assert "\n" not in message and "predict_identity.json" in message
    assert "2 key(s) changed: threshold: 0.45 -> 0.6, tile: 64 -> 96" in message
    assert "--overwrite" in info.value.fix
    with pytest.raises(ConfigError, match=f"model.weights_sha256: {'1' * 64} -> {'2' * 64}"):
        predict_paths(_inverse, M2, slides, out, RESUME)
    with pytest.raises(ConfigError, match="precision: fp32 -> bf16"):
        predict_paths(_red, replace(M1, precision="bf16"), slides, out, RESUME)
    # the batch size does not change the outputs: resumed, nothing is predicted again
    log: list[str] = []
    predict_paths(_red, M1, slides, out, replace(RESUME, batch_size=2), log=log.append)
    assert sum("complete, skipped" in line for line in log) == 2

    # a run without --resume (what --overwrite does) predicts every input again with the other model
    predict_paths(_inverse, M2, slides, out, OPTS)
    rows = _rows(out / "cohort.csv")
    assert {r["weights_sha256"] for r in rows} == {"2" * 64} and {r["model"] for r in rows} == {"m2"}
    assert len({r["identity"] for r in rows}) == 1
    for name in ("a", "b"):
        assert np.array_equal(
            _tiff_pixels(out / f"{name}_prob.tif"), _tiff_pixels(by_m2 / f"{name}_prob.tif")
        )
    with pytest.raises(ConfigError, match="model.weights_sha256"):
        predict_paths(_red, M1, slides, out, RESUME)


def test_resume_after_an_interrupted_replacement_redoes_the_sets_of_the_old_model(
    slides, by_m2, tmp_path, monkeypatch
):
    out = tmp_path / "out"
    predict_paths(_red, M1, slides, out, OPTS)
    # the run with the second model is killed while a's GeoJSON is written: a's TIFF and overlay are the
    # second model's already, its GeoJSON and summary still the first's; b is the first model's, untouched
    real = writers.write_geojson

    def killed_on_a(path, collection):
        if Path(path).stem == "a":
            raise KeyboardInterrupt
        return real(path, collection)

    monkeypatch.setattr(writers, "write_geojson", killed_on_a)
    with pytest.raises(KeyboardInterrupt):
        predict_paths(_inverse, M2, slides, out, OPTS)
    monkeypatch.undo()
    assert {_summary(out, n)["model"]["folder"] for n in ("a", "b")} == {"m1"}
    log: list[str] = []
    predict_paths(_inverse, M2, slides, out, RESUME, log=log.append)
    assert not [line for line in log if "complete, skipped" in line]
    # b's set is complete, but of the first model: this folder is now the second's
    assert "b: made with another model or settings, predicted again (--resume)" in log
    for name in ("a", "b"):
        assert _summary(out, name)["model"]["folder"] == "m2"
        assert np.array_equal(
            _tiff_pixels(out / f"{name}_prob.tif"), _tiff_pixels(by_m2 / f"{name}_prob.tif")
        )
        assert (out / f"{name}.geojson").read_text() == (by_m2 / f"{name}.geojson").read_text()
    assert {r["model"] for r in _rows(out / "cohort.csv")} == {"m2"}


def test_a_set_whose_files_were_replaced_is_not_complete(slides, tmp_path):
    out = tmp_path / "out"
    predict_paths(_red, M1, slides, out, OPTS)
    identity = _summary(out, "b")["identity"]
    assert is_complete(out, "b", identity) and not is_complete(out, "b", "0" * 16)
    assert set(_summary(out, "b")["output_bytes"]) == {"probability", "geojson", "overlay"}
    shutil.copy(out / "a_prob.tif", out / "b_prob.tif")  # another slide's TIFF under b's name
    assert not is_complete(out, "b") and not is_complete(out, "b", identity)
    log: list[str] = []
    predict_paths(_red, M1, slides, out, RESUME, log=log.append)
    assert "a: complete, skipped (--resume)" in log and "b: complete, skipped (--resume)" not in log
    assert is_complete(out, "b", identity)


def test_outputs_of_an_earlier_teachseg_are_refused_by_resume(slides, tmp_path):
    out = tmp_path / "out"
    predict_paths(_red, M1, slides, out, OPTS)
    # what teachseg wrote before it recorded identities: no predict_identity.json, summaries without them
    (out / "predict_identity.json").unlink()
    for name in ("a", "b"):
        data = _summary(out, name)
        for key in ("identity", "prediction", "output_bytes"):
            del data[key]
        (out / f"{name}_summary.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError) as info:
        predict_paths(_red, M1, slides, out, RESUME)
    assert "a_summary.json" in str(info.value) and "earlier teachseg" in str(info.value)
    assert "--overwrite" in info.value.fix
    predict_paths(_red, M1, slides, out, OPTS)  # predicted again, the folder then resumes
    predict_paths(_red, M1, slides, out, RESUME)


def test_the_identity_covers_what_changes_the_outputs_and_only_that():
    ro = resolve_options(OPTS, M1)
    base = prediction_fields(M1, ro)
    assert base["model.weights_sha256"] == "1" * 64 and "batch_size" not in base and "resume" not in base
    for opts in (
        replace(OPTS, threshold=0.3),
        replace(OPTS, overlap=0.5),
        replace(OPTS, mpp=1.0),
        replace(OPTS, level=1),
        replace(OPTS, tissue_mask=False),
        replace(OPTS, min_area_um2=1.0),
        replace(OPTS, simplify_px=0.0),
        replace(OPTS, slide_mpp=0.25),
    ):
        assert prediction_fields(M1, resolve_options(opts, M1)) != base, opts
    for model in (replace(M1, backend="onnx"), replace(M1, tta=True), replace(M1, mean=[0.5, 0.5, 0.5])):
        assert prediction_fields(model, ro) != base, model
    assert prediction_fields(M1, resolve_options(replace(OPTS, batch_size=1, resume=True), M1)) == base


# ------------------------------------------------------------------------------------------------ item 3


def test_tumour_fraction_of_tissue_is_a_fraction(slide_path, tmp_path):
    # the stand-in model calls the white glass around the tissue tumour: whole predicted tiles, chosen with a
    # dilated tissue mask, hold 1.8 times the tissue's area of tumour
    (s,) = predict_paths(_red, M1, [slide_path], tmp_path, OPTS)
    assert s["tumour_area_px"] > s["tissue_area_px"]
    assert 0 < s["tumour_in_tissue_area_px"] <= s["tissue_area_px"]
    assert s["tumour_fraction_of_tissue"] == pytest.approx(
        s["tumour_in_tissue_area_px"] / s["tissue_area_px"], abs=1e-6
    )
    assert 0 < s["tumour_fraction_of_tissue"] <= 1
    row = _rows(tmp_path / "cohort.csv")[0]
    assert float(row["tumour_fraction"]) == s["tumour_fraction_of_tissue"]


def test_tissue_accounting_counts_tumour_on_the_tissue_pixels(tmp_path):
    raster = RawRaster(tmp_path / "p.u8", 6, 8)
    prob = np.zeros((6, 8), np.uint8)
    prob[:, 4:] = 200  # tumour in the right half
    prob[0, 0] = 255  # and one pixel outside the tissue
    raster.write_rows(0, prob)
    tissue = np.zeros((3, 4), bool)  # each thumbnail pixel covers 2 x 2 raster pixels
    tissue[1:, 1:3] = True  # raster rows 2-5, columns 2-5
    assert tissue_accounting(raster, tissue, thr_u8=128, band=4) == (16, 8)
    assert tissue_accounting(raster, np.ones((3, 4), bool), thr_u8=128) == (48, 25)
    raster.close()
