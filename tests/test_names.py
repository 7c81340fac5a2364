"""The name sets a config checks against stay in step with smp and Lightning, and spell names canonically."""

from __future__ import annotations

from typing import get_args

import pytest
import segmentation_models_pytorch as smp
from pydantic_core import PydanticCustomError

from teachseg import names
from teachseg.precision import ALIASES, PrecisionName


def test_architectures_are_smps() -> None:
    assert list(get_args(names.Arch)) == sorted(smp.MODEL_ARCHITECTURES_MAPPING)


def test_accelerators_cover_lightnings_registry() -> None:
    from lightning.pytorch.accelerators import AcceleratorRegistry

    assert set(AcceleratorRegistry.available_accelerators()) | {"auto", "gpu"} == set(
        get_args(names.Accelerator)
    )


def test_precision_names_are_the_aliases() -> None:
    assert get_args(PrecisionName) == tuple(ALIASES)


@pytest.mark.parametrize(
    ("check", "value", "expected"),
    [
        (names.check_arch, " FPN", "fpn"),
        (names.check_accelerator, "CPU", "cpu"),
        (names.check_precision, "BF16-Mixed", "bf16-mixed"),
        (names.check_encoder, "resnet18", "resnet18"),
        (names.check_encoder, "tu-resnet18", "tu-resnet18"),
        (names.check_strategy, "ddp_find_unused_parameters_true", "ddp_find_unused_parameters_true"),
    ],
)
def test_known_names_pass_in_their_canonical_spelling(check, value: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    assert check(value) == expected


def test_unknown_name_carries_suggestions_and_the_fix() -> None:
    with pytest.raises(PydanticCustomError) as err:
        names.check_strategy("dpp_spawn")
    ctx = err.value.context or {}
    assert "unknown strategy 'dpp_spawn'" in str(ctx["message"]) and "ddp_spawn" in str(ctx["message"])
    assert "fsdp" in str(ctx["fix"]) and "deepspeed" in str(ctx["fix"])


def test_encoders_known_without_smp_are_all_in_smps_registry() -> None:
    assert set(smp.encoders.get_encoder_names()) >= names.KNOWN_ENCODERS


def test_a_config_naming_a_common_encoder_does_not_import_smp() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from teachseg.config import build_config; "
        "build_config({'model': {'arch': 'linknet', 'encoder': 'resnet34'}}); "
        "print('segmentation_models_pytorch' in sys.modules)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "False"


def test_an_encoder_outside_the_common_set_is_checked_against_smp() -> None:
    rare = sorted(set(smp.encoders.get_encoder_names()) - names.KNOWN_ENCODERS)[0]
    assert names.check_encoder(rare) == rare
    with pytest.raises(PydanticCustomError):
        names.check_encoder("resnet35")
