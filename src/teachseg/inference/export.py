"""ONNX export with dynamic batch, height and width, checked against PyTorch through onnxruntime.

Precision: the exported graph is always fp32 (:data:`EXPORT_PRECISION`); onnxruntime runs it as such, so a
:class:`~teachseg.inference.predictor.Predictor` on the ONNX backend reports that policy.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from teachseg.io import atomic_path
from teachseg.precision import Precision

#: The precision policy of every exported graph (and of the ONNX backend that runs it).
EXPORT_PRECISION = Precision.FP32


def export_onnx(model: Any, path: str | Path, in_channels: int = 3, opset: int = 17, size: int = 256) -> Path:
    """Write ``model`` (logits out) to ``path`` atomically, with dynamic batch, height and width."""
    import torch

    model = model.eval().cpu().to(memory_format=torch.contiguous_format)
    dummy = torch.zeros(1, in_channels, size, size)
    with (
        atomic_path(path, suffix=".onnx") as tmp,
        torch.inference_mode(False),
        torch.no_grad(),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        torch.onnx.export(
            model,
            (dummy,),
            str(tmp),
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={
                "image": {0: "batch", 2: "height", 3: "width"},
                "logits": {0: "batch", 2: "height", 3: "width"},
            },
            opset_version=opset,
            dynamo=False,  # the TorchScript exporter needs no onnxscript and handles smp models
        )
    return Path(path)


def onnx_max_abs_diff(
    model: Any, path: str | Path, shape: tuple[int, int, int, int] = (2, 3, 192, 320)
) -> float:
    """Largest absolute difference between the sigmoid outputs of PyTorch and onnxruntime on random input."""
    import onnxruntime as ort
    import torch

    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    with torch.inference_mode():
        ref = torch.sigmoid(model(torch.from_numpy(x))).numpy()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    got = 1.0 / (1.0 + np.exp(-got))
    return float(np.abs(ref - got).max())
