"""The OpenVINO backend: agreement with torch (a real slide region, TTA, the last smaller batch), ``auto``'s
fallbacks, the compile cache, and ``predict`` / ``evaluate`` / pseudo-labels on it."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from teachseg.errors import ConfigError, ModelError
from teachseg.inference import backends, openvino_backend
from teachseg.inference.backends import build_predictor

from .conftest import CMU_SMALL

IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
needs_openvino = pytest.mark.skipif(
    openvino_backend.unavailable_reason() is not None, reason="OpenVINO is not installed"
)


def _model(encoder: str = "resnet18", seed: int = 0, head_gain: float = 1.0) -> torch.nn.Module:
    """A randomly initialised LinkNet; ``head_gain`` spreads its logits so that few pixels sit at 0.5."""
    from teachseg.models import build_model

    torch.manual_seed(seed)
    model = build_model("linknet", encoder)
    with torch.no_grad():
        model.segmentation_head[0].weight.mul_(head_gain)
    return model.eval()


@pytest.fixture(autouse=True)
def _fresh_caches():
    openvino_backend.clear_cache()
    backends._said.clear()
    yield
    openvino_backend.clear_cache()


def _tiles(n: int = 5, size: int = 64, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


@needs_openvino
@pytest.mark.skipif(not CMU_SMALL.is_file(), reason=f"real slide not found at {CMU_SMALL}")
def test_probabilities_match_torch_on_a_real_slide_region():
    import openslide

    slide = openslide.OpenSlide(str(CMU_SMALL))
    region = np.asarray(slide.read_region((700, 900), 0, (512, 256)).convert("RGB"))
    tiles = np.stack([region[:, :256], region[:, 256:]])
    model = _model("resnet34")
    ov = build_predictor(model, *IMAGENET, backend="openvino", precision="auto", size=256)
    ref = build_predictor(model, *IMAGENET, backend="torch", precision="fp32", channels_last=False)
    got, want = ov(tiles), ref(tiles)
    assert ov.backend == "openvino" and str(ov.precision) in ("fp32", "bf16")
    assert got.shape == want.shape == (2, 256, 256)
    assert float(want.std()) > 1e-3  # the random network does respond to the tissue
    assert np.abs(got - want).max() <= 2 / 255


@needs_openvino
def test_tta_and_a_smaller_last_batch_match_torch():
    model = _model()
    ov = build_predictor(model, *IMAGENET, backend="openvino", precision="fp32", tta=True, size=64)
    ref = build_predictor(model, *IMAGENET, backend="torch", precision="fp32", tta=True)
    tiles = _tiles(5)
    for batch in (tiles, tiles[:3], tiles[:1]):
        assert np.abs(ov(batch) - ref(batch)).max() < 1e-4
    ref.tta = False  # TTA really changes the answer, so the comparison above tested it
    assert np.abs(ov(tiles) - ref(tiles)).max() > 1e-4
    assert ov(_tiles(2, 96)[:, :, :32]).shape == (2, 96, 32)  # another tile size compiles on first use


@needs_openvino
def test_compiled_once_per_model_shape_and_precision(monkeypatch):
    calls = []
    real = openvino_backend._compile

    def counting(core, graph, config):
        calls.append(str(graph.get_parameters()[0].get_partial_shape()))
        return real(core, graph, config)

    monkeypatch.setattr(openvino_backend, "_compile", counting)
    model = _model()
    first = build_predictor(model, *IMAGENET, backend="openvino", precision="fp32", size=64)
    first(_tiles(3))
    second = build_predictor(model, *IMAGENET, backend="auto", precision="fp32", size=64)
    assert second.backend == "openvino"
    np.testing.assert_array_equal(second(_tiles(3)), first(_tiles(3)))
    assert calls == ["[?,3,64,64]"]  # dynamic batch, one compile
    build_predictor(_model(seed=1), *IMAGENET, backend="openvino", precision="fp32", size=64)
    assert len(calls) == 2  # other weights: compiled again
    assert any(openvino_backend.cache_dir().glob("*.blob"))  # OpenVINO's own cache for the next process


def test_auto_falls_back_to_torch_without_openvino(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "openvino", None)  # "import openvino" raises ImportError
    model = _model()
    with caplog.at_level(logging.WARNING, logger="teachseg.inference"):
        p = build_predictor(model, *IMAGENET, backend="auto", device="cpu", size=64)
        build_predictor(model, *IMAGENET, backend="auto", device="cpu", size=64)
    assert p.backend == "torch"
    said = [r.getMessage() for r in caplog.records if "backend auto" in r.getMessage()]
    assert len(said) == 1 and "OpenVINO is not installed" in said[0]  # said once
    ref = build_predictor(model, *IMAGENET, backend="torch", size=64)
    np.testing.assert_array_equal(p(_tiles()), ref(_tiles()))
    with pytest.raises(ModelError) as err:
        build_predictor(model, *IMAGENET, backend="openvino", size=64)
    assert "pip install 'teachseg[openvino]'" in str(err.value.fix)


@needs_openvino
def test_auto_falls_back_to_torch_when_compile_fails(monkeypatch, caplog):
    def broken(core, graph, config):
        raise RuntimeError("no kernel for this layer")

    monkeypatch.setattr(openvino_backend, "_compile", broken)
    with caplog.at_level(logging.WARNING, logger="teachseg.inference"):
        p = build_predictor(_model(), *IMAGENET, backend="auto", device="cpu", size=64)
    assert p.backend == "torch"
    assert "RuntimeError: no kernel for this layer" in caplog.text
    with pytest.raises(RuntimeError):
        build_predictor(_model(), *IMAGENET, backend="openvino", size=64)


@needs_openvino
def test_auto_falls_back_when_openvino_disagrees(monkeypatch, caplog):
    monkeypatch.setattr(backends, "agreement", lambda *a: 0.5)
    with caplog.at_level(logging.WARNING, logger="teachseg.inference"):
        p = build_predictor(_model(), *IMAGENET, backend="auto", device="cpu", size=64)
    assert p.backend == "torch" and "differ from torch's by 0.5" in caplog.text


def test_unknown_backend_lists_the_valid_ones():
    with pytest.raises(ConfigError) as err:
        build_predictor(_model(), *IMAGENET, backend="tensorrt")
    assert "tensorrt" in str(err.value) and "auto, torch, onnx, openvino" in str(err.value.fix)


# --- through the commands ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spread_model_dir(tmp_path_factory) -> Path:
    from teachseg.models import ModelMeta, save_model_folder

    folder = tmp_path_factory.mktemp("models") / "spread"
    save_model_folder(_model(head_gain=30.0), folder, ModelMeta("linknet", "resnet18", 128, mpp=0.5))
    return folder


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.logical_and(a, b).sum()
    return float(2 * inter / max(a.sum() + b.sum(), 1))


@needs_openvino
def test_predict_openvino_matches_torch_end_to_end(tmp_path, spread_model_dir, slide_path):
    import tifffile

    from teachseg.cli import run

    masks, probs = {}, {}
    for backend in ("torch", "openvino"):
        out = tmp_path / backend
        args = ["predict", str(spread_model_dir), str(slide_path), "--out", str(out), "--no-progress"]
        assert run([*args, "--backend", backend, "--batch-size", "3"]) == 0
        summary = json.loads((out / "synth_summary.json").read_text())
        assert summary["model"]["backend"] == backend
        probs[backend] = tifffile.imread(out / "synth_prob.tif").astype(np.int16)
        masks[backend] = probs[backend] >= 128
    assert 0.05 < masks["torch"].mean() < 0.95  # a real decision to agree on
    assert _dice(masks["openvino"], masks["torch"]) >= 0.98
    assert np.abs(probs["openvino"] - probs["torch"]).max() <= 2


@needs_openvino
def test_evaluate_records_the_backend(tmp_path, spread_model_dir, synth_data):
    from teachseg.cli import run

    scores = {}
    for backend in ("torch", "openvino"):
        out = tmp_path / backend
        assert (
            run(["evaluate", str(spread_model_dir), str(synth_data), "--out", str(out), "--backend", backend])
            == 0
        )
        summary = json.loads((out / "summary.json").read_text())
        assert summary["backend"] == backend and summary["inference_precision"] in ("fp32", "bf16")
        scores[backend] = summary["dice"]
    assert scores["openvino"] == pytest.approx(scores["torch"], abs=0.01)


@needs_openvino
def test_pseudo_labels_on_openvino_are_tagged_and_not_mixed(tmp_path, synth_data):
    from teachseg.data.datasets import Record
    from teachseg.io import read_json, write_png
    from teachseg.models import ModelMeta
    from teachseg.selftrain.pseudolabel import generate_pseudo_labels

    recs = [Record(id=p.name, image=p) for p in sorted((synth_data / "unlabelled").iterdir())]
    meta = ModelMeta("linknet", "resnet18", 64)
    model, out = _model(head_gain=10.0), tmp_path / "gen1"
    kw = {"generation": 1, "teacher": "gen0", "teacher_sha256": "a" * 64, "tta": True, "precision": "fp32"}
    made = {}
    for backend in ("openvino", "torch"):
        manifest = generate_pseudo_labels(model, meta, recs, out, backend=backend, **kw)
        assert read_json(out / "manifest.json")["backend"] == manifest["backend"] == backend
        made[backend] = {i["id"]: _png(out / i["file"]).astype(np.int16) for i in manifest["images"]}
        # spoil one label: the next backend must make its own rather than reuse this one
        write_png(
            out / manifest["images"][0]["file"], np.zeros_like(_png(out / manifest["images"][0]["file"]))
        )
    for key, label in made["torch"].items():
        assert label.std() > 1 and np.abs(label - made["openvino"][key]).max() <= 1


def _png(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im)


def test_cli_backend_errors_are_one_line(tmp_path, spread_model_dir, slide_path, monkeypatch, capsys):
    from teachseg.cli import run

    args = ["predict", str(spread_model_dir), str(slide_path), "--out", str(tmp_path), "--no-progress"]
    assert run([*args, "--backend", "tensorrt"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith("error:")
        and "unknown backend 'tensorrt'" in err
        and "auto, torch, onnx, openvino" in err
    )
    monkeypatch.setitem(sys.modules, "openvino", None)
    assert run([*args, "--backend", "openvino"]) == 2
    err = capsys.readouterr().err.strip()
    assert "OpenVINO is not installed" in err and "pip install 'teachseg[openvino]'" in err
    assert "\n" not in err
