"""The names a config may use, checked when it loads: each unknown name fails with a did-you-mean list.

Fixed sets are ``Literal`` types (:data:`Arch`, :data:`Accelerator`, and
:data:`teachseg.precision.PrecisionName`); open-ended ones are checked against their library's registry,
imported only when a value needs it (smp's encoders, timm's models, Lightning's strategies), so importing
:mod:`teachseg.config` stays light.

Each ``check_*`` function is a pydantic validator: it returns the canonical spelling (lower case for the
fixed sets, as smp and Lightning accept them) or raises a ``PydanticCustomError`` whose context carries
the ``fix`` that :func:`teachseg.config.build_config` puts in its :class:`~teachseg.errors.ConfigError`.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any, Literal, get_args

from pydantic_core import PydanticCustomError

#: segmentation_models_pytorch's architectures (``smp.MODEL_ARCHITECTURES_MAPPING``; a test keeps them equal).
Arch = Literal[
    "deeplabv3",
    "deeplabv3plus",
    "dpt",
    "fpn",
    "linknet",
    "manet",
    "pan",
    "pspnet",
    "segformer",
    "unet",
    "unetplusplus",
    "upernet",
]

#: The architectures the study trains and compares (``experiment.archs`` by default).
STUDY_ARCHS: tuple[Arch, ...] = ("linknet", "fpn")

#: Lightning's ``Trainer(accelerator=...)`` names (its ``AcceleratorRegistry`` plus ``auto`` and ``gpu``).
Accelerator = Literal["auto", "cpu", "gpu", "cuda", "mps", "tpu"]


def did_you_mean(name: str, options: Sequence[str]) -> str:
    """`` (did you mean a, b?)`` for the closest options, or an empty string when none is close."""
    close = difflib.get_close_matches(name, list(options), n=3)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def unknown(kind: str, name: object, options: Sequence[str], fix: str | None = None) -> PydanticCustomError:
    """The validation error for an unknown ``kind`` name, with suggestions and the fix to print."""
    hint = did_you_mean(str(name).lower(), options) or did_you_mean(str(name), options)
    return PydanticCustomError(
        "unknown_name",
        "{message}",
        {"message": f"unknown {kind} '{name}'{hint}", "fix": fix or f"use one of: {', '.join(options)}"},
    )


def _in_set(kind: str, value: Any, options: tuple[str, ...]) -> Any:
    if not isinstance(value, str):
        return value  # left to pydantic's type check ("Input should be ...")
    key = value.strip().lower()
    if key not in options:
        raise unknown(kind, value, options)
    return key


def check_arch(value: Any) -> Any:
    """An smp architecture name, any case (stored in lower case, as smp's registry spells it)."""
    return _in_set("architecture", value, get_args(Arch))


def check_accelerator(value: Any) -> Any:
    """A Lightning accelerator name, any case."""
    return _in_set("accelerator", value, get_args(Accelerator))


def check_precision(value: Any) -> Any:
    """A precision name (teachseg's or Lightning's, see :data:`teachseg.precision.ALIASES`), any case."""
    from teachseg.precision import ALIASES

    return _in_set("precision", value, tuple(ALIASES))


def architectures() -> list[str]:
    """smp's architecture names (``smp.MODEL_ARCHITECTURES_MAPPING``), sorted."""
    import segmentation_models_pytorch as smp

    return sorted(smp.MODEL_ARCHITECTURES_MAPPING)


def encoders() -> list[str]:
    """smp's encoder names (timm's are also accepted as ``tu-<name>``), sorted."""
    import segmentation_models_pytorch as smp

    return sorted(smp.encoders.get_encoder_names())


#: Encoder names every supported smp release registers: a config naming one of these is valid without
#: importing smp (about 4 s of a CLI command that may not need it); any other name is checked against smp's
#: registry. ``tests/test_names.py`` checks this set against the installed smp.
KNOWN_ENCODERS = frozenset(
    {
        *(f"resnet{d}" for d in (18, 34, 50, 101, 152)),
        "resnext50_32x4d",
        "resnext101_32x8d",
        *(f"efficientnet-b{i}" for i in range(8)),
        *(f"mit_b{i}" for i in range(6)),
        "densenet121",
        "densenet169",
        "vgg16",
        "vgg16_bn",
        "mobilenet_v2",
    }
)


def check_encoder(value: str) -> str:
    """An smp encoder name, or ``tu-<name>`` for a timm model (checked against smp's registry, lazily)."""
    if value in KNOWN_ENCODERS:
        return value
    if value.startswith("tu-"):
        import timm

        if not timm.list_models(value[3:]):
            raise unknown("timm encoder", value, [], fix="see `timm.list_models()` for valid names")
        return value
    names = encoders()
    if value not in names:
        raise unknown(
            "encoder", value, names, fix=f"use one of: {', '.join(names)} (or a timm encoder as tu-<name>)"
        )
    return value


def check_strategy(value: str) -> str:
    """A Lightning strategy name (``auto``, ``ddp``, ``ddp_spawn``, ``fsdp``, ``deepspeed``, ...)."""
    if value == "auto":
        return value
    from lightning.pytorch.strategies import StrategyRegistry

    names = ["auto", *sorted(StrategyRegistry.available_strategies())]
    if value not in names:
        raise unknown("strategy", value, names)
    return value
