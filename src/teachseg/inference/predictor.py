"""Batched model runner: normalisation, mixed precision, channels_last, flip TTA; torch, onnxruntime or
OpenVINO (which one ``auto`` picks: :mod:`teachseg.inference.backends`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from teachseg.errors import ModelError
from teachseg.precision import Precision, autocast_dtype, resolve

BACKENDS = ("torch", "onnx", "openvino")


def resolve_device(device: str = "auto") -> str:
    """``auto`` becomes ``cuda`` when a GPU is available, else ``cpu``; other names pass through."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError("CUDA was asked for but is not available", fix="use --device cpu (or auto)")
    return device


class Predictor:
    """Turns batches of uint8 RGB tiles into float32 probabilities.

    Args:
        model: a torch module returning logits (N, 1, H, W) for normalised (N, C, H, W) input, or ``None``
            with ``onnx_path`` for the onnxruntime backend (with ``backend="openvino"``, the module exported
            and compiled by :class:`~teachseg.inference.openvino_backend.OpenVinoRunner`).
        mean, std: per-channel normalisation applied as ``(rgb / 255 - mean) / std``.
        device: ``auto``, ``cpu`` or ``cuda[:i]``.
        precision: a :class:`~teachseg.precision.Precision` or its name (``auto``, ``fp32``, ``bf16``,
            ``fp16``), resolved for ``device`` by :func:`teachseg.precision.resolve`; autocast on the torch
            backend, OpenVINO's inference precision (bf16 only where the CPU has it natively, else fp32);
            the ONNX backend runs the exported fp32 graph.
        tta: also predict horizontally and vertically flipped tiles and average the probabilities.
        onnx_path: an ONNX file (``teachseg export``) run through onnxruntime instead of torch.
        threads: onnxruntime intra-op threads, or OpenVINO inference threads.
        channels_last: run the torch model in NHWC memory format (faster; False reproduces a Trainer run
            with ``train.channels_last: false`` to the last bit).
        backend: ``torch``, ``onnx`` or ``openvino``; default: ``onnx`` with ``onnx_path``, else ``torch``.

    Example:
        >>> p = Predictor(model, meta.mean, meta.std)             # doctest: +SKIP
        >>> probs = p(np.zeros((4, 256, 256, 3), np.uint8))       # doctest: +SKIP
    """

    def __init__(
        self,
        model: Any | None,
        mean: Sequence[float],
        std: Sequence[float],
        device: str = "auto",
        precision: str | Precision = Precision.AUTO,
        tta: bool = False,
        onnx_path: str | Path | None = None,
        threads: int | None = None,
        channels_last: bool = True,
        backend: str | None = None,
    ):
        self.mean = np.asarray(mean, dtype=np.float32).reshape(1, -1, 1, 1)
        self.std = np.asarray(std, dtype=np.float32).reshape(1, -1, 1, 1)
        self.tta = tta
        self.channels_last = channels_last
        self.backend = backend or ("onnx" if onnx_path is not None else "torch")
        if self.backend not in BACKENDS:
            raise ModelError(f"unknown backend '{self.backend}'", fix=f"use one of: {', '.join(BACKENDS)}")
        self._session: Any = None
        self._runner: Any = None
        if self.backend == "openvino":
            from teachseg.inference.openvino_backend import OpenVinoRunner

            if model is None:
                raise ModelError("no model given for the openvino backend")
            self.device = "cpu"
            self._runner = OpenVinoRunner(model, len(mean), resolve(precision, "cpu"), threads)
            self.precision = self._runner.precision
            return
        if self.backend == "onnx":
            from teachseg.inference.export import EXPORT_PRECISION

            self.device, self.precision = "cpu", EXPORT_PRECISION
            self._session = _onnx_session(Path(onnx_path), threads)  # type: ignore[arg-type]
            self._input_name = self._session.get_inputs()[0].name
            return
        import torch

        if model is None:
            raise ModelError("no model given for the torch backend")
        self.device = resolve_device(device)
        self.precision = resolve(precision, self.device)
        self.model = model.eval().to(self.device)
        if channels_last and (self.device == "cpu" or self.device.startswith("cuda")):
            self.model = self.model.to(memory_format=torch.channels_last)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        import torch

        dtype = autocast_dtype(self.precision)
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda" if self.device.startswith("cuda") else "cpu", dtype=dtype)

    def normalise(self, tiles: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 normalised."""
        x = tiles.transpose(0, 3, 1, 2).astype(np.float32) * (1.0 / 255.0)
        return (x - self.mean) / self.std

    def __call__(self, tiles: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 tiles -> (N, H, W) float32 probabilities in [0, 1]."""
        if tiles.shape[0] == 0:
            return np.zeros(tiles.shape[:3], dtype=np.float32)
        return self.predict_normalised(self.normalise(tiles))

    def predict_normalised(self, x: np.ndarray) -> np.ndarray:
        """(N, C, H, W) float32, already normalised -> (N, H, W) float32 probabilities in [0, 1]."""
        if self.backend == "onnx":
            return self._run_arrays(self._run_session, x)
        if self.backend == "openvino":
            return self._run_arrays(self._runner, x)
        return self._run_torch(x)

    def _run_torch(self, x_np: np.ndarray) -> np.ndarray:
        import torch

        x = torch.from_numpy(x_np).to(self.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        views = [(), (3,), (2,)] if self.tta else [()]
        with torch.inference_mode(), self._autocast():
            total = None
            for dims in views:
                xi = torch.flip(x, dims) if dims else x
                p = torch.sigmoid(self.model(xi).float())[:, 0]
                if dims:
                    p = torch.flip(p, tuple(d - 1 for d in dims))
                total = p if total is None else total + p
        assert total is not None
        return (total / len(views)).float().cpu().numpy()

    def _run_session(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self._session.run(None, {self._input_name: x})[0])

    def _run_arrays(self, logits_of: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
        """Flip TTA around a numpy logits function (onnxruntime, OpenVINO), as the torch path does it."""
        views = [None, 3, 2] if self.tta else [None]
        total = np.zeros((x.shape[0], x.shape[2], x.shape[3]), dtype=np.float32)
        for axis in views:
            xi = np.ascontiguousarray(np.flip(x, axis)) if axis else x
            logits = logits_of(xi)[:, 0]
            with np.errstate(over="ignore"):  # exp(-logit) overflows to inf for very negative logits: p = 0
                p = 1.0 / (1.0 + np.exp(-logits.astype(np.float32)))
            total += np.flip(p, axis - 1) if axis else p
        return total / len(views)


def _onnx_session(path: Path, threads: int | None) -> Any:
    import onnxruntime as ort

    if not path.is_file():
        raise ModelError(
            "ONNX file not found", path=path, fix="write one with `teachseg export MODEL_DIR --onnx FILE`"
        )
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelError(
            f"onnxruntime cannot load the model ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})",
            path=path,
            fix="re-export it with `teachseg export`",
        ) from None
