"""Fixtures shared by the CLI tests: a stand-in model folder and a small generated slide."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """An untrained, seeded LinkNet-ResNet18 model folder (64 px, 0.5 um/px)."""
    import torch

    from teachseg.models import ModelMeta, build_model, save_model_folder

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("m") / "model"
    save_model_folder(
        build_model("linknet", "resnet18"), folder, ModelMeta("linknet", "resnet18", 64, mpp=0.5)
    )
    return folder


@pytest.fixture(scope="module")
def slide(tmp_path_factory) -> Path:
    """A generated 512^2 pyramidal slide at 0.5 um/px."""
    from teachseg.data.synth_slide import synthetic_slide

    path = tmp_path_factory.mktemp("s") / "slide.tif"
    synthetic_slide(path, 512, mpp=0.5, seed=5, tile=128)
    return path


def one_error_line(capsys) -> str:
    """stderr as one ``error:`` line without a traceback (asserted)."""
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "Traceback" not in err
    return err
