"""Which engine runs a model (``--backend``): ``auto``, ``torch``, ``onnx`` or ``openvino``.

* ``auto`` on a CPU: OpenVINO when it is installed and the model exports, compiles and agrees with torch
  (fp32) on one tile; otherwise torch, and the reason is said once per process on the ``teachseg.inference``
  logger (stderr). On a GPU ``auto`` is torch.
* ``torch``: the model itself (autocast, channels_last), on any device.
* ``onnx``: onnxruntime on an fp32 ONNX export, CPU.
* ``openvino``: :mod:`teachseg.inference.openvino_backend`, CPU; an error when OpenVINO is missing or fails.

:func:`build_predictor` turns a torch module and one of these names into a
:class:`~teachseg.inference.predictor.Predictor`; ``predict``, ``evaluate`` and pseudo-labelling all go
through it.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from teachseg.errors import ConfigError, ModelError
from teachseg.inference.predictor import Predictor, resolve_device
from teachseg.precision import Precision

#: Every ``--backend`` value.
BACKEND_CHOICES = ("auto", "torch", "onnx", "openvino")

#: Largest probability difference to torch fp32 on the check tile, per precision OpenVINO runs at: 2/255
#: (two steps of the stored 8-bit probabilities) in fp32, where only rounding differs (it is amplified on
#: steep logits); a broken export differs by tenths.
AGREEMENT_TOLERANCE = {Precision.FP32: 2 / 255, Precision.BF16: 0.05}

log = logging.getLogger("teachseg.inference")
_said: set[str] = set()


def check_backend(name: str) -> str:
    """``name`` in lower case when it is a backend.

    Raises:
        ConfigError: unknown name (the fix lists the valid ones).
    """
    key = str(name).strip().lower()
    if key not in BACKEND_CHOICES:
        raise ConfigError(f"unknown backend '{name}'", fix=f"use one of: {', '.join(BACKEND_CHOICES)}")
    return key


def say_once(message: str) -> None:
    """Log ``message`` as a warning the first time this process sees it."""
    if message not in _said:
        _said.add(message)
        log.warning(message)


def build_predictor(
    model: Any,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    backend: str = "auto",
    device: str = "auto",
    precision: str | Precision = Precision.AUTO,
    tta: bool = False,
    channels_last: bool = True,
    size: int = 256,
) -> Predictor:
    """A predictor for the torch ``model`` on the ``backend`` asked for (``auto`` resolved as above).

    ``size``: the tile side OpenVINO is compiled and checked for first (other sizes compile on first use).

    Raises:
        ConfigError: unknown backend, or ``openvino``/``onnx`` asked for on a GPU.
        ModelError: ``openvino`` asked for and not installed, or it cannot run the model.
    """
    backend = check_backend(backend)
    dev = resolve_device(device)
    on_cpu = dev == "cpu"
    if backend in ("openvino", "onnx") and not on_cpu:
        raise ConfigError(
            f"the {backend} backend runs on the CPU, not on {dev}", fix="use --device cpu or --backend torch"
        )
    if backend == "openvino":
        return openvino_predictor(model, mean, std, precision, tta, size)
    if backend == "onnx":
        return _onnx_predictor(model, mean, std, tta, size)
    if backend == "auto" and on_cpu:
        from teachseg.inference.openvino_backend import unavailable_reason

        reason = unavailable_reason()
        if reason is None:
            try:
                return openvino_predictor(model, mean, std, precision, tta, size)
            except Exception as exc:
                first = (str(exc).splitlines() or [""])[0][:160]
                reason = f"OpenVINO cannot run this model ({type(exc).__name__}: {first})"
        say_once(f"backend auto: using torch on the CPU, because {reason}")
    return Predictor(
        model,
        mean,
        std,
        device=dev,
        precision=precision,
        tta=tta,
        channels_last=channels_last,
        backend="torch",
    )


def openvino_predictor(
    model: Any,
    mean: Sequence[float],
    std: Sequence[float],
    precision: str | Precision = Precision.AUTO,
    tta: bool = False,
    size: int = 256,
) -> Predictor:
    """An OpenVINO predictor, compiled for ``size`` and checked against torch fp32 on one tile.

    Raises:
        ModelError: OpenVINO is not installed, fails to export or compile, or disagrees with torch.
    """
    from teachseg.inference.openvino_backend import import_openvino

    import_openvino()
    predictor = Predictor(model, mean, std, device="cpu", precision=precision, tta=tta, backend="openvino")
    diff = agreement(predictor, model, len(mean), size)
    tolerance = AGREEMENT_TOLERANCE[Precision(predictor.precision)]
    if not diff <= tolerance:
        raise ModelError(
            f"OpenVINO's probabilities differ from torch's by {diff:.3g} (more than {tolerance}) on a check tile",
            fix="use --backend torch",
        )
    return predictor


def agreement(predictor: Predictor, model: Any, in_channels: int, size: int) -> float:
    """Largest absolute probability difference between ``predictor`` (no TTA) and torch fp32 ``model`` on
    one deterministic (1, C, size, size) tile (smooth gradients plus noise)."""
    import torch

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    noise = np.random.default_rng(0).standard_normal((in_channels, size, size)).astype(np.float32)
    x = (np.stack([np.sin(3 * (xx + c) + 2 * yy) for c in range(in_channels)]) + 0.5 * noise)[None]
    tta, predictor.tta = predictor.tta, False
    try:
        got = predictor.predict_normalised(x)
    finally:
        predictor.tta = tta
    model = model.eval().cpu()
    with torch.inference_mode():
        ref = torch.sigmoid(model(torch.from_numpy(x)).float())[:, 0].numpy()
    return float(np.abs(ref - got).max())


def _onnx_predictor(
    model: Any, mean: Sequence[float], std: Sequence[float], tta: bool, size: int
) -> Predictor:
    from teachseg.inference.export import export_onnx

    with tempfile.TemporaryDirectory(prefix="teachseg-onnx-") as tmp:
        path = export_onnx(model, Path(tmp) / "model.onnx", len(mean), size=size)
        return Predictor(None, mean, std, tta=tta, onnx_path=path)
