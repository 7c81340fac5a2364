"""A thin factory over segmentation_models_pytorch, and the model folder format.

A saved model is a folder that ``segmentation_models_pytorch.from_pretrained(folder)`` loads as is
(``config.json`` + ``model.safetensors``, written by smp's own ``save_pretrained``), plus ``teachseg.json``
with what prediction needs: preprocessing, image size, threshold and the training summary. Weights are only
ever read from safetensors (or ``torch.load(weights_only=True)`` for local encoder files): no pickle.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from teachseg.errors import ModelError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
META_FILE = "teachseg.json"
#: The encoder weights file of a ``teachseg pretrain`` folder (beside its ``pretrain.json``).
PRETRAINED_ENCODER = "encoder.safetensors"
FORMAT_VERSION = 1


def check_names(arch: str, encoder: str) -> None:
    """Fail early, listing the valid names, when an architecture or encoder is unknown.

    The same checks as a config's when it loads (:mod:`teachseg.names`), for direct calls of :func:`build_model`.
    """
    from pydantic_core import PydanticCustomError

    from teachseg.names import check_arch, check_encoder  # names never imports this module: no cycle

    try:
        check_arch(arch)
        check_encoder(encoder)
    except PydanticCustomError as exc:
        ctx = exc.context or {}
        raise ModelError(str(ctx.get("message", exc)), fix=ctx.get("fix")) from None


def build_model(
    arch: str = "linknet",
    encoder: str = "resnet34",
    encoder_weights: str | Path | None = None,
    in_channels: int = 3,
    classes: int = 1,
    dropout: float = 0.0,
) -> nn.Module:
    """Create an smp model.

    Args:
        arch: any smp architecture name (case-insensitive), e.g. ``linknet``, ``fpn``, ``unet``.
        encoder: any smp encoder, e.g. ``resnet34``.
        encoder_weights: ``"imagenet"`` (downloaded through smp), ``None``, or a path to a local weights file
            (``.safetensors``, or ``.pth``/``.pt`` read with ``weights_only=True``) holding the encoder's state dict,
            or to a ``teachseg pretrain`` folder (its ``encoder.safetensors``).
        dropout: channel dropout applied to the decoder output before the segmentation head
            (``model.decoder_dropout``, Noisy Student's ``selftrain.student.dropout``); implemented as a hook so
            the state dict, and so the saved model folder, stay identical to smp's (inference has no dropout).
    """
    import segmentation_models_pytorch as smp

    check_names(arch, encoder)
    local: Path | None = None
    smp_weights: str | None = None
    if encoder_weights is not None and str(encoder_weights).lower() not in ("none", "null", ""):
        if str(encoder_weights) == "imagenet":
            smp_weights = "imagenet"
        else:
            local = Path(encoder_weights)
            if local.is_dir() and (local / PRETRAINED_ENCODER).is_file():  # a `teachseg pretrain` folder
                local = local / PRETRAINED_ENCODER
            if not local.is_file():
                raise ModelError(
                    "encoder weights file not found",
                    path=local,
                    fix="give 'imagenet', null, or the path of a .safetensors/.pth file with the encoder's weights",
                )
    try:
        model = smp.create_model(
            arch, encoder_name=encoder, encoder_weights=smp_weights, in_channels=in_channels, classes=classes
        )
    except KeyError as exc:  # e.g. no imagenet weights for this encoder
        raise ModelError(str(exc).strip("'\""), fix="pick other encoder_weights or null") from None
    except Exception as exc:
        if smp_weights is None:
            raise
        raise ModelError(
            f"could not fetch ImageNet weights for encoder '{encoder}' through smp ({type(exc).__name__})",
            fix=(
                "download them once where the internet is reachable (they are cached by huggingface_hub) and "
                "set HF_HUB_OFFLINE=1 here, or set model.encoder_weights to a local .safetensors/.pth file, or null"
            ),
        ) from None
    if local is not None:
        load_encoder_weights(model, local)
    # The saved config must never trigger a download when the folder is loaded again.
    if hasattr(model, "_hub_mixin_config") and "encoder_weights" in model._hub_mixin_config:
        model._hub_mixin_config["encoder_weights"] = None
    if dropout > 0:
        add_head_dropout(model, dropout)
    return model


def build_encoder(encoder: str = "resnet34", in_channels: int = 3) -> nn.Module:
    """The encoder alone, randomly initialised, as every smp architecture builds it (depth 5, output stride 32):
    its state dict has exactly the keys of ``build_model(arch, encoder).encoder`` (what
    :func:`load_encoder_weights` loads), whatever the architecture.

    Raises:
        ModelError: an unknown name, or an encoder smp cannot build (the reason quoted).
    """
    import segmentation_models_pytorch as smp

    check_names("linknet", encoder)
    try:
        return smp.encoders.get_encoder(encoder, in_channels=in_channels, depth=5, weights=None)
    except Exception as exc:
        raise ModelError(
            f"smp cannot build encoder '{encoder}' ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})",
            fix="choose a convolutional encoder such as resnet34 (list them with `teachseg models --encoders`)",
        ) from None


def add_head_dropout(model: nn.Module, p: float) -> None:
    """Drop whole channels of the segmentation head's input with probability ``p`` while training.

    A forward pre-hook rather than an ``nn.Sequential`` wrapper: wrapping would rename the head's state-dict keys
    and break loading the folder with smp's ``from_pretrained``.
    """
    head = getattr(model, "segmentation_head", None)
    if head is None:
        return

    def _hook(module: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return (F.dropout2d(args[0], p=p, training=module.training), *args[1:])

    head.register_forward_pre_hook(_hook)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(
            f"cannot read weights ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})",
            path=path,
            fix="give a .safetensors file, or a .pth/.pt holding only a state dict (no pickled objects)",
        ) from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ModelError("the file does not hold a state dict", path=path)
    return obj


def _encoder_key(key: str, wanted: set[str]) -> str:
    """``key`` as the encoder names it: as is, or without an ``encoder.`` (and a Lightning ``model.``) prefix.
    The key is tried as is first: timm encoders (``tu-*``) have keys that start with ``model.`` themselves."""
    for k in (key, key.removeprefix("encoder."), key.removeprefix("model.").removeprefix("encoder.")):
        if k in wanted:
            return k
    return key.removeprefix("model.").removeprefix("encoder.")


def load_encoder_weights(model: nn.Module, path: Path) -> None:
    """Load a local encoder state dict (keys with or without an ``encoder.`` prefix; classifier keys dropped)."""
    state = _read_state_dict(path)
    enc: nn.Module = model.encoder  # type: ignore[assignment]
    wanted = set(enc.state_dict())
    keys = {key: _encoder_key(key, wanted) for key in state}
    cleaned = {keys[key]: value for key, value in state.items() if keys[key] in wanted}
    missing = sorted(wanted - set(cleaned))
    # Keys under the encoder's own modules that it lacks mean another depth (resnet34 into resnet18 shares
    # every resnet18 key and shape): refuse instead of silently loading part of it.
    tops = {w.split(".")[0] for w in wanted}
    extra = sorted(k for k in keys.values() if k not in wanted and k.split(".")[0] in tops)
    if not cleaned or missing or extra:
        problems = []
        if missing:
            problems.append(f"{len(missing)} of {len(wanted)} tensors missing, e.g. {', '.join(missing[:3])}")
        if extra:
            problems.append(f"{len(extra)} unexpected, e.g. {', '.join(extra[:3])}")
        raise ModelError(
            f"weights do not match the encoder ({'; '.join(problems) or 'no encoder tensors found'})",
            path=path,
            fix="give weights saved from the same encoder (its state_dict, optionally prefixed 'encoder.')",
        )
    try:
        enc.load_state_dict(cleaned, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"weights do not fit the encoder: {str(exc).splitlines()[0]}", path=path) from None


def count_parameters(model: nn.Module) -> int:
    """The number of parameters of ``model`` (trainable or not)."""
    return sum(p.numel() for p in model.parameters())


def parameter_count(arch: str, encoder: str) -> int:
    """Parameter count without allocating memory (built on the meta device)."""
    import segmentation_models_pytorch as smp

    with torch.device("meta"):
        model = smp.create_model(arch, encoder_name=encoder, encoder_weights=None)
    return count_parameters(model)


class ModelMeta(BaseModel):
    """teachseg's side of a model folder (``teachseg.json``): everything prediction needs besides the weights.

    ``format_version`` says which layout wrote it; a folder from a newer teachseg is refused. The checks of
    :meth:`_check` run before the fields are typed, so a hand-edited or corrupt file gets a one-line reason
    (``mean must hold 3 numbers``). Unknown keys are ignored. Positional ``arch, encoder, image_size`` are
    accepted: ``ModelMeta("unet", "resnet18", 64)``.
    """

    model_config = ConfigDict(extra="ignore")

    arch: str
    encoder: str
    image_size: int
    in_channels: int = 3
    classes: int = 1
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    threshold: float = 0.5
    mpp: float | None = None
    summary: dict[str, Any] = Field(default_factory=dict)
    #: content hashes of what the model saw: ``images``/``masks`` it trained on, ``val_images`` that chose
    #: its epoch (see ``teachseg.training.identity.training_data_hashes``); empty in older folders
    trained_on: dict[str, Any] = Field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    teachseg_version: str = ""

    def __init__(self, *args: Any, **data: Any) -> None:
        data.update(zip(("arch", "encoder", "image_size"), args, strict=False))
        super().__init__(**data)

    @model_validator(mode="before")
    @classmethod
    def _check(cls, data: Any) -> Any:
        """Type-check what prediction relies on; a TypeError (pydantic does not wrap it) names the reason."""
        if not isinstance(data, dict):
            raise TypeError(f"a JSON object is expected, not {type(data).__name__}")
        _check_meta({**_DEFAULTS, **data})
        return data

    def to_json(self) -> dict[str, Any]:
        """The ``teachseg.json`` data (``mean`` and ``std`` as lists)."""
        d = self.model_dump(mode="python")
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ModelMeta:
        """Validate ``teachseg.json`` data; a bad value raises TypeError naming the key."""
        return cls.model_validate(d)


_DEFAULTS: dict[str, Any] = {
    "in_channels": 3,
    "classes": 1,
    "mean": IMAGENET_MEAN,
    "std": IMAGENET_STD,
    "threshold": 0.5,
    "mpp": None,
    "summary": {},
    "trained_on": {},
    "format_version": FORMAT_VERSION,
}


def save_model_folder(model: nn.Module, folder: str | Path, meta: ModelMeta) -> Path:
    """Write ``folder`` atomically: smp's ``config.json`` + ``model.safetensors`` and ``teachseg.json``."""
    from teachseg import __version__
    from teachseg.io import replace_dir

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    meta.teachseg_version = __version__
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        was_training = model.training
        model.eval()
        cpu_model = model.to(memory_format=torch.contiguous_format)
        cpu_model.save_pretrained(str(tmp))  # type: ignore[operator]
        model.train(was_training)
        (tmp / META_FILE).write_text(json.dumps(meta.to_json(), indent=2) + "\n", encoding="utf-8")
        replace_dir(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def check_model_folder(folder: str | Path) -> ModelMeta:
    """Check that ``folder`` is a complete model folder and return its validated ``teachseg.json``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(
            "model folder not found", path=folder, fix="give a folder written by `teachseg train`"
        )
    missing = [n for n in ("config.json", "model.safetensors", META_FILE) if not (folder / n).is_file()]
    if missing:
        raise ModelError(
            f"model folder is missing {', '.join(missing)}",
            path=folder,
            fix="give a complete folder written by `teachseg train` (runs/<name>/model)",
        )
    path = folder / META_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        meta = ModelMeta.from_json(data)
    except RecursionError:
        raise ModelError(f"{META_FILE} is not valid (nested too deeply)", path=path) from None
    except (OSError, ValueError, TypeError) as exc:  # ValueError covers bad JSON and bad UTF-8
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise ModelError(
            f"{META_FILE} is not valid ({reason})",
            path=path,
            fix="restore the model folder written by `teachseg train`",
        ) from None
    if meta.format_version > FORMAT_VERSION:
        raise ModelError(
            f"{META_FILE} was written by a newer teachseg (format {meta.format_version}; "
            f"this one reads up to {FORMAT_VERSION})",
            path=path,
            fix="upgrade teachseg (pip install -U teachseg) to use this model folder",
        )
    return meta


def _check_meta(meta: dict[str, Any]) -> None:
    """The checks of a ``teachseg.json`` (defaults filled in); a hand-edited or corrupt file fails here."""

    def number(x: object) -> bool:
        return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)

    def count(x: object) -> bool:
        return isinstance(x, int) and not isinstance(x, bool) and x > 0

    for key in ("arch", "encoder"):
        if not isinstance(meta.get(key), str):
            raise TypeError(f"{key} must be a name")
    for key in ("image_size", "in_channels", "classes"):
        if not count(meta.get(key)):
            raise TypeError(f"{key} must be a positive integer")
    for key in ("mean", "std"):
        if not isinstance(meta[key], list | tuple):
            raise TypeError(f"{key} must be a list of numbers")
    for key in ("mean", "std"):
        values = meta[key]
        if len(values) != meta["in_channels"] or not all(number(v) for v in values):
            raise TypeError(f"{key} must hold {meta['in_channels']} numbers")
    if not all(v != 0 for v in meta["std"]):
        raise TypeError("std must not hold 0")
    if not number(meta["threshold"]):
        raise TypeError("threshold must be a number")
    if meta["mpp"] is not None and not (number(meta["mpp"]) and meta["mpp"] > 0):
        raise TypeError("mpp must be a positive number or null")
    if not isinstance(meta["summary"], dict) or not isinstance(meta["trained_on"], dict):
        raise TypeError("summary and trained_on must be objects")
    if not count(meta["format_version"]) or not isinstance(meta.get("teachseg_version", ""), str):
        raise TypeError("format_version must be a positive integer and teachseg_version a string")


def load_model_folder(
    folder: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, ModelMeta]:
    """Load a model folder (weights from safetensors only) and its metadata; returns the model in eval mode."""
    import segmentation_models_pytorch as smp

    folder = Path(folder)
    meta = check_model_folder(folder)
    import contextlib
    import io

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # smp prints "Loading weights from local directory"
            model = smp.from_pretrained(str(folder))
    except Exception as exc:
        raise ModelError(
            f"cannot load the weights ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})",
            path=folder / "model.safetensors",
            fix="re-export the model with `teachseg train`; the file may be truncated",
        ) from None
    model.to(map_location).eval()
    return model, meta
