"""One precision policy for training, evaluation, pseudo-labelling, prediction and export.

Every entry point takes a :class:`Precision` (or one of its accepted spellings) and turns it into a concrete
one with :func:`resolve`, so ``auto`` means the same thing everywhere:

* ``auto`` on a CUDA GPU: ``bf16`` where the GPU supports it, else ``fp16``;
* ``auto`` on a CPU: ``bf16`` where the CPU computes it natively (AVX512-BF16 or AMX), else ``fp32``
  (emulated bf16 is slower than fp32 and less accurate);
* ``fp32``, ``bf16``, ``fp16``: as asked. Low precision is autocast ("mixed"): weights stay fp32. fp16
  autocast is a GPU format: on a CPU ``fp16`` means ``bf16``, as Lightning's Trainer does it too, so
  training and evaluation never differ.

Training hands the result to Lightning as :func:`lightning_name` (``32-true``, ``bf16-mixed``,
``16-mixed``); the :class:`~teachseg.inference.predictor.Predictor` (evaluation, pseudo-labels, ``predict``)
autocasts to :func:`autocast_dtype`; ONNX export always writes an fp32 graph.

Configs written before this policy used Lightning's names (``bf16-mixed``, ``32-true``, ``16-mixed``, ``32``,
``16``); :func:`parse` still accepts them.

Example:
    >>> resolve("32-true", "cpu")
    <Precision.FP32: 'fp32'>
    >>> lightning_name(resolve("fp16", "cuda"))
    '16-mixed'
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from teachseg.errors import ConfigError

if TYPE_CHECKING:
    import torch


class Precision(StrEnum):
    """A precision policy; ``AUTO`` until :func:`resolve` makes it concrete for a device."""

    AUTO = "auto"
    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"


#: Every spelling ``train.precision`` accepts (checked case-insensitively, stored in lower case as written).
PrecisionName = Literal[
    "auto", "fp32", "32", "32-true", "float32", "bf16", "bf16-mixed", "fp16", "16", "16-mixed", "float16"
]

#: Every accepted spelling (lower case) and the policy it means; Lightning's names are kept for old configs.
#: Its keys are :data:`PrecisionName`'s values (a test keeps them equal).
ALIASES: dict[str, Precision] = {
    "auto": Precision.AUTO,
    "fp32": Precision.FP32,
    "32": Precision.FP32,
    "32-true": Precision.FP32,
    "float32": Precision.FP32,
    "bf16": Precision.BF16,
    "bf16-mixed": Precision.BF16,
    "fp16": Precision.FP16,
    "16": Precision.FP16,
    "16-mixed": Precision.FP16,
    "float16": Precision.FP16,
}

_LIGHTNING = {Precision.FP32: "32-true", Precision.BF16: "bf16-mixed", Precision.FP16: "16-mixed"}


def valid_names() -> str:
    """The accepted values, for error messages and help texts."""
    return ", ".join(ALIASES)


def parse(value: str | Precision) -> Precision:
    """The policy a config value or option names.

    Raises:
        ConfigError: ``value`` is not one of :data:`ALIASES` (the message lists them).
    """
    if isinstance(value, Precision):
        return value
    key = str(value).strip().lower()
    if key not in ALIASES:
        raise ConfigError(
            f"unknown precision '{value}'",
            fix=f"use one of: {valid_names()} (auto picks per device; the Lightning names mean the same)",
        )
    return ALIASES[key]


def is_cuda(device: str) -> bool:
    """Whether a device or Lightning accelerator name (``cuda:1``, ``gpu``, ``auto``) runs on a CUDA GPU."""
    import torch

    name = str(device).lower()
    if name == "auto":
        return torch.cuda.is_available()
    return name.startswith("cuda") or name == "gpu"


def cpu_has_native_bf16() -> bool:
    """True on CPUs with AVX512-BF16 or AMX, where bf16 autocast is faster than fp32."""
    import torch

    cpu = getattr(torch, "cpu", None)
    return any(
        bool(getattr(cpu, name, lambda: False)())
        for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    )


def resolve(precision: str | Precision, device: str) -> Precision:
    """The concrete policy (never ``AUTO``) for ``device`` (``cpu``, ``cuda[:i]``, or a Lightning accelerator).

    Raises:
        ConfigError: unknown ``precision``.
    """
    p = parse(precision)
    on_gpu = is_cuda(device)
    if p is Precision.FP16 and not on_gpu:
        return Precision.BF16  # what Lightning trains with when asked for 16-mixed on a CPU
    if p is not Precision.AUTO:
        return p
    if on_gpu:
        import torch

        return Precision.BF16 if torch.cuda.is_bf16_supported() else Precision.FP16
    return Precision.BF16 if cpu_has_native_bf16() else Precision.FP32


def lightning_name(precision: Precision) -> str:
    """Lightning's ``Trainer(precision=...)`` value of a concrete policy."""
    if precision is Precision.AUTO:
        raise ValueError("resolve() the policy before asking for Lightning's name")
    return _LIGHTNING[precision]


def autocast_dtype(precision: Precision) -> torch.dtype | None:
    """The autocast dtype of a concrete policy (None: no autocast, fp32)."""
    import torch

    if precision is Precision.AUTO:
        raise ValueError("resolve() the policy before asking for its dtype")
    return {Precision.FP32: None, Precision.BF16: torch.bfloat16, Precision.FP16: torch.float16}[precision]
