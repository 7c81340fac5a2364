"""One precision policy: every entry point resolves "auto" (and the old spellings) the same way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import teachseg.precision as precision_mod
from teachseg.config import load_config
from teachseg.data.datasets import Record
from teachseg.errors import ConfigError
from teachseg.inference.predictor import Predictor
from teachseg.models import ModelMeta, build_model, save_model_folder
from teachseg.precision import (
    ALIASES,
    Precision,
    autocast_dtype,
    lightning_name,
    parse,
    resolve,
)


class _Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("auto", Precision.AUTO),
        ("fp32", Precision.FP32),
        ("32-true", Precision.FP32),
        ("32", Precision.FP32),
        ("bf16", Precision.BF16),
        ("bf16-mixed", Precision.BF16),
        ("BF16-Mixed", Precision.BF16),
        ("fp16", Precision.FP16),
        ("16-mixed", Precision.FP16),
        ("16", Precision.FP16),
        (Precision.FP16, Precision.FP16),
    ],
)
def test_old_and_new_spellings_parse_to_one_policy(name: str, expected: Precision) -> None:
    assert parse(name) is expected


def test_concrete_policies_map_to_lightning_and_autocast() -> None:
    assert [lightning_name(p) for p in (Precision.FP32, Precision.BF16, Precision.FP16)] == [
        "32-true",
        "bf16-mixed",
        "16-mixed",
    ]
    assert autocast_dtype(Precision.FP32) is None
    assert autocast_dtype(Precision.BF16) is torch.bfloat16
    assert autocast_dtype(Precision.FP16) is torch.float16
    with pytest.raises(ValueError, match="resolve"):
        lightning_name(Precision.AUTO)


@pytest.mark.parametrize("bad", ["bf16-true", "64-true", "half", ""])
def test_unknown_precision_lists_the_valid_ones(bad: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        parse(bad)
    for name in ("auto", "fp32", "bf16", "fp16", "32-true", "bf16-mixed", "16-mixed"):
        assert name in str(err.value)
    with pytest.raises(ConfigError, match="use one of: auto, fp32"):
        Predictor(_Tiny(), (0, 0, 0), (1, 1, 1), device="cpu", precision=bad)

    cfg = tmp_path / "bad.yaml"
    cfg.write_text(f"name: x\ndata: {{root: {tmp_path}}}\ntrain: {{precision: '{bad}'}}\n")
    with pytest.raises(ConfigError, match="train.precision.*use one of: auto, fp32"):
        load_config(cfg)


def test_old_config_values_still_load(tmp_path: Path) -> None:
    for value in ("auto", "bf16-mixed", "32-true", "16-mixed", "fp32"):
        cfg = tmp_path / "ok.yaml"
        cfg.write_text(f"name: x\ndata: {{root: {tmp_path}}}\ntrain: {{precision: '{value}'}}\n")
        assert load_config(cfg).train.precision == value  # kept as written


def test_auto_on_gpu_prefers_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve("auto", "cuda:0") is Precision.BF16
    assert resolve("auto", "gpu") is Precision.BF16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve("auto", "cuda") is Precision.FP16
    assert resolve("fp32", "cuda") is Precision.FP32
    assert resolve("fp16", "cuda") is Precision.FP16


def _entry_points(tmp_path: Path, write_config) -> dict[str, Precision]:
    """What "auto" becomes in training, evaluation, pseudo-labelling, predict and export on this CPU."""
    from teachseg.inference.export import export_onnx
    from teachseg.inference.images import make_predictor
    from teachseg.inference.run import load_predictor
    from teachseg.selftrain import pseudolabel
    from teachseg.training.fit import build_trainer

    got: dict[str, Precision] = {}
    cfg = load_config(write_config(tmp_path, train={"precision": "auto", "accelerator": "cpu"}))
    trainer = build_trainer(cfg, tmp_path / "run", 1, [])
    got["training"] = parse(str(trainer.precision))

    meta = ModelMeta("custom", "none", image_size=32)
    got["evaluation"] = make_predictor(_Tiny(), meta).precision

    seen: list[Precision] = []
    real = pseudolabel.make_predictor

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        predictor = real(*args, **kwargs)
        seen.append(predictor.precision)
        return predictor

    image = tmp_path / "u.png"
    Image.fromarray(np.full((40, 48, 3), 200, np.uint8)).save(image)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pseudolabel, "make_predictor", spy)
        pseudolabel.generate_pseudo_labels(
            _Tiny(), meta, [Record("u.png", image)], tmp_path / "pseudo", generation=1, teacher="t", tta=False
        )
    got["pseudo-labelling"] = seen[0]

    folder = save_model_folder(
        build_model("linknet", "resnet18"), tmp_path / "model", ModelMeta("linknet", "resnet18", 64)
    )
    _, info = load_predictor(folder, precision="auto", device="cpu")
    got["predict"] = parse(info.precision)

    onnx = export_onnx(_Tiny(), tmp_path / "tiny.onnx", size=32)
    got["export"] = Predictor(None, (0, 0, 0), (1, 1, 1), precision="auto", onnx_path=onnx).precision
    return got


@pytest.mark.parametrize("native_bf16", [False, True])
def test_every_entry_point_resolves_auto_alike_on_cpu(
    native_bf16: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, write_config
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(precision_mod, "cpu_has_native_bf16", lambda: native_bf16)
    expected = Precision.BF16 if native_bf16 else Precision.FP32
    assert resolve("auto", "cpu") is expected
    got = _entry_points(tmp_path, write_config)
    # ONNX export always writes an fp32 graph: that is its policy, whatever "auto" means elsewhere.
    assert got.pop("export") is Precision.FP32
    assert got == dict.fromkeys(("training", "evaluation", "pseudo-labelling", "predict"), expected)


def test_every_alias_is_accepted_by_the_trainer_and_the_predictor(tmp_path: Path, write_config) -> None:
    from teachseg.training.fit import build_trainer

    for name, policy in ALIASES.items():
        concrete = resolve(name, "cpu")
        if policy is Precision.FP16:  # Lightning trains 16-mixed as bf16-mixed on a CPU; so do we
            assert concrete is Precision.BF16
        elif policy is not Precision.AUTO:
            assert concrete is policy
        cfg = load_config(write_config(tmp_path, train={"precision": name, "accelerator": "cpu"}))
        assert parse(str(build_trainer(cfg, tmp_path / "run", 1, []).precision)) is concrete
        assert Predictor(_Tiny(), (0, 0, 0), (1, 1, 1), device="cpu", precision=name).precision is concrete
