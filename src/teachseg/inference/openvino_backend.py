"""The OpenVINO backend: a torch model exported to ONNX once, compiled for the CPU, cached twice.

OpenVINO (``pip install 'teachseg[openvino]'``) is optional; nothing here imports it at module level.

* **Export**: the model goes through :func:`teachseg.inference.export.export_onnx` (fp32, dynamic batch,
  height and width) into a temporary folder and is read by ``openvino.Core().read_model``, once per set of
  weights in a process.
* **Compile**: for each tile size the graph is reshaped to ``(-1, C, H, W)`` (any batch, so the last,
  smaller batch needs nothing special) and compiled for ``CPU`` with ``INFERENCE_PRECISION_HINT`` ``bf16``
  when the policy is bf16 and the CPU computes it natively (``BF16`` among its optimisation capabilities),
  else ``f32``; as many threads as torch uses (``OMP_NUM_THREADS``).
* **Cache**: compiled models are kept in process, keyed by the weights' SHA-256, the precision, the input
  shape and the thread count; OpenVINO's own ``CACHE_DIR`` (``$TEACHSEG_CACHE_DIR/openvino``, by default
  ``~/.cache/teachseg/openvino``; safe to delete) makes a later process's compile a load.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from teachseg.errors import ModelError
from teachseg.precision import Precision

#: How to get OpenVINO, for error messages.
OPENVINO_FIX = "pip install 'teachseg[openvino]' (or choose --backend torch)"

_GRAPHS: dict[str, Any] = {}  # weights hash -> openvino.Model read from the exported ONNX
_COMPILED: dict[tuple[str, str, tuple[int, ...], int], Any] = {}  # (hash, precision, shape, threads) -> model


def import_openvino() -> Any:
    """The ``openvino`` module.

    Raises:
        ModelError: it is not installed (the fix names the extra).
    """
    try:
        import openvino
    except ImportError as exc:
        raise ModelError(f"OpenVINO is not installed ({exc})", fix=OPENVINO_FIX) from None
    return openvino


def unavailable_reason() -> str | None:
    """None when OpenVINO can be imported, else why not (one line)."""
    try:
        import_openvino()
    except ModelError as exc:
        return exc.args[0] if exc.args else "OpenVINO is not installed"
    return None


def cache_dir() -> Path:
    """OpenVINO's compiled-model cache: ``openvino/`` in teachseg's cache folder (``TEACHSEG_CACHE_DIR``)."""
    from teachseg.data.duplicates import cache_dir as teachseg_cache

    return teachseg_cache() / "openvino"


def weights_hash(model: Any) -> str:
    """SHA-256 of a torch module's class, parameter and buffer names, shapes, dtypes and bytes."""
    import torch

    h = hashlib.sha256(type(model).__qualname__.encode())
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.view(-1).view(dtype=torch.uint8).numpy().tobytes())
    return h.hexdigest()


def ov_precision(requested: Precision, core: Any) -> Precision:
    """The precision OpenVINO runs at: bf16 when asked for and native on this CPU, else fp32."""
    if requested in (Precision.BF16, Precision.FP16):
        caps = {str(c).upper() for c in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")}
        if "BF16" in caps:
            return Precision.BF16
    return Precision.FP32


_core: Any = None


def _get_core() -> Any:
    global _core
    if _core is None:
        ov = import_openvino()
        _core = ov.Core()
        try:
            folder = cache_dir()
            folder.mkdir(parents=True, exist_ok=True)
            _core.set_property({"CACHE_DIR": str(folder)})
        except OSError:  # an unwritable cache only costs compile time
            pass
    return _core


def _compile(core: Any, graph: Any, config: dict[str, Any]) -> Any:
    """One ``compile_model`` call (a seam for tests counting compiles)."""
    return core.compile_model(graph, "CPU", config)


class OpenVinoRunner:
    """``runner(x)``: (N, C, H, W) float32 normalised -> (N, 1, H, W) float32 logits, through OpenVINO.

    Args:
        model: the torch module (logits out); exported once per set of weights in this process.
        in_channels: its input channels.
        precision: the resolved policy; bf16 runs as bf16 only where the CPU has it natively.
        threads: OpenVINO inference threads (default: ``torch.get_num_threads()``).
    """

    def __init__(self, model: Any, in_channels: int, precision: Precision, threads: int | None = None):
        import torch

        self.core = _get_core()
        self.in_channels = in_channels
        self.precision = ov_precision(precision, self.core)
        self.threads = int(threads or torch.get_num_threads())
        self.key = weights_hash(model)
        if self.key not in _GRAPHS:
            _GRAPHS[self.key] = self._read(model)
        self._graph = _GRAPHS[self.key]

    def _read(self, model: Any) -> Any:
        from teachseg.inference.export import export_onnx

        with tempfile.TemporaryDirectory(prefix="teachseg-openvino-") as tmp:
            path = export_onnx(model, Path(tmp) / "model.onnx", self.in_channels)
            graph = self.core.read_model(str(path))
            # the weights are read into memory: the file may go
            return graph

    def compiled(self, height: int, width: int) -> Any:
        """The compiled model for (any batch, C, height, width), compiled on first use."""
        shape = (self.in_channels, int(height), int(width))
        key = (self.key, str(self.precision), shape, self.threads)
        if key not in _COMPILED:
            graph = self._graph.clone()
            graph.reshape([-1, *shape])
            hint = "bf16" if self.precision is Precision.BF16 else "f32"
            config = {"INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": self.threads}
            _COMPILED[key] = _compile(self.core, graph, config)
        return _COMPILED[key]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        compiled = self.compiled(x.shape[2], x.shape[3])
        result = compiled(np.ascontiguousarray(x, dtype=np.float32))
        return np.asarray(result[compiled.output(0)], dtype=np.float32)


def clear_cache() -> None:
    """Forget every graph and compiled model held in this process (the on-disk cache stays)."""
    _GRAPHS.clear()
    _COMPILED.clear()
