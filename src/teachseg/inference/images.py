"""Prediction on whole dataset images, as in training: predictor factory, batched probabilities, file keys.

Used by evaluation (:mod:`teachseg.training.evaluate`) and pseudo-labelling (:mod:`teachseg.selftrain`).
Each image is resized to the model's square input exactly as in training, and its probabilities are resized
back to the image's native size by :func:`native_probability` (bilinear, ``align_corners=False``, float32 on
the CPU, so the device does not change the result). Store them with
:func:`teachseg.inference.quantise.to_uint8`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from teachseg.data.transforms import Normalise, resize, to_float_image
from teachseg.inference.predictor import Predictor
from teachseg.models import ModelMeta
from teachseg.precision import Precision, resolve

T = TypeVar("T")


def make_predictor(
    model: nn.Module,
    meta: ModelMeta,
    tta: bool = False,
    precision: str | Precision = Precision.AUTO,
    channels_last: bool = True,
    backend: str = "torch",
) -> Predictor:
    """The shared batched runner (mixed precision, channels_last, flip TTA) on the model's own device.

    ``precision``: a :class:`~teachseg.precision.Precision` or any name it accepts, resolved for the model's
    device by :func:`teachseg.precision.resolve`. ``backend``: ``torch`` (the default: training's scoring
    path), or ``auto``/``openvino``/``onnx`` as :func:`teachseg.inference.backends.build_predictor` reads them.
    """
    device = str(next(model.parameters()).device)
    if backend != "torch":
        from teachseg.inference.backends import build_predictor

        return build_predictor(
            model,
            meta.mean,
            meta.std,
            backend=backend,
            device=device,
            precision=resolve(precision, device),
            tta=tta,
            channels_last=channels_last,
            size=meta.image_size,
        )
    return Predictor(
        model,
        meta.mean,
        meta.std,
        device=device,
        precision=resolve(precision, device),
        tta=tta,
        channels_last=channels_last,
    )


def native_probability(prob: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(h, w) probabilities at the model's input size -> (H, W) float32 on the CPU at the native ``size``.

    Bilinear, ``align_corners=False``, clamped to [0, 1]; unchanged when the sizes already match.
    """
    p = prob.detach().float().cpu().reshape(1, 1, *prob.shape[-2:])
    if tuple(p.shape[-2:]) != tuple(size):
        p = F.interpolate(p, size=tuple(size), mode="bilinear", align_corners=False)
    return p[0, 0].clamp(0.0, 1.0)


def predict_prob(
    model: nn.Module,
    images: Sequence[np.ndarray],
    meta: ModelMeta,
    tta: bool = False,
    precision: str | Precision = Precision.AUTO,
    predictor: Predictor | None = None,
) -> list[np.ndarray]:
    """Probability maps (float32, native size) for a batch of (H, W, 3) uint8 images.

    Each image is resized to the model's square input exactly as in training; the probabilities are resized
    back to the image's native size by :func:`native_probability`. ``tta`` averages flipped predictions.
    Pass ``predictor`` (from :func:`make_predictor`) to reuse one across batches.
    """
    probs = predict_input_size(images, meta, predictor or make_predictor(model, meta, tta, precision))
    return [native_probability(p, im.shape[:2]).numpy() for p, im in zip(probs, images, strict=True)]


def predict_input_size(images: Sequence[np.ndarray], meta: ModelMeta, predictor: Predictor) -> torch.Tensor:
    """(N, image_size, image_size) probabilities of (H, W, 3) uint8 images, preprocessed as in training."""
    norm = Normalise(meta.mean, meta.std)
    x = torch.stack([norm(resize(to_float_image(im), meta.image_size)) for im in images])
    return torch.from_numpy(predictor.predict_normalised(x.numpy()))


def batched(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of ``items`` of at most ``size`` each."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


def safe_key(record_id: str) -> str:
    """A file-system-safe, unique-enough name for an image id."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(record_id).with_suffix("").as_posix()).strip("_")[:80]
    return f"{stem}-{hashlib.sha1(record_id.encode()).hexdigest()[:6]}"
