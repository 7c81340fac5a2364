"""Fixtures for the inference tests: tiny model folders (the generated slides come from tests/wsi)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from tests.wsi.conftest import blank_slide, slide_path  # noqa: F401  (shared fixtures)

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
CMU_SMALL = SHARED / "data" / "wsi" / "CMU-1-Small-Region.svs"


class EchoRed(nn.Module):
    """Model stand-in: logit of its (un-normalised, mean 0 / std 1) red channel, so sigmoid(out) == red."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = x[:, :1].float().clamp(1e-6, 1 - 1e-6)
        return torch.log(r) - torch.log1p(-r)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from teachseg.models import ModelMeta, build_model, save_model_folder

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("models") / "tiny"
    meta = ModelMeta(arch="linknet", encoder="resnet18", image_size=128, mpp=0.5)
    save_model_folder(build_model("linknet", "resnet18"), folder, meta)
    return folder


def pattern_image(height: int, width: int) -> np.ndarray:
    """A smooth-and-sharp red-channel pattern (gradients, stripes, a disc) for stitching tests."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    red = 40 + 80 * (xx / width) + 60 * (yy / height)
    red += 50 * ((xx // 37 + yy // 53) % 2)
    red[(yy - height / 2) ** 2 + (xx - width / 3) ** 2 < (height / 5) ** 2] = 235
    rgb = np.stack([red, np.full_like(red, 90), np.full_like(red, 160)], axis=-1)
    return np.clip(rgb, 0, 255).astype(np.uint8)
