import numpy as np
import pytest

from teachseg.inference.export import export_onnx, onnx_max_abs_diff
from teachseg.inference.predictor import Predictor
from teachseg.models import load_model_folder


def test_onnx_agrees_with_torch_and_runs_as_backend(tmp_path, model_dir):
    model, meta = load_model_folder(model_dir)
    path = export_onnx(model, tmp_path / "m.onnx", size=meta.image_size)
    assert onnx_max_abs_diff(model, path, (2, 3, 96, 160)) <= 1e-3  # dynamic height and width
    tiles = np.random.default_rng(0).integers(0, 255, (2, 64, 96, 3), dtype=np.uint8)
    onnx_p = Predictor(None, meta.mean, meta.std, onnx_path=path)(tiles)
    torch_p = Predictor(model, meta.mean, meta.std, device="cpu", precision="fp32")(tiles)
    assert onnx_p.shape == (2, 64, 96)
    assert np.abs(onnx_p - torch_p).max() <= 1e-3
    flips = Predictor(None, meta.mean, meta.std, onnx_path=path, tta=True)(tiles)
    assert flips.shape == onnx_p.shape


def test_missing_onnx_file(tmp_path):
    from teachseg.errors import ModelError

    with pytest.raises(ModelError, match="ONNX file not found"):
        Predictor(None, (0, 0, 0), (1, 1, 1), onnx_path=tmp_path / "none.onnx")
