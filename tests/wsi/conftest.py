"""Fixtures for the whole-slide tests: small generated pyramidal slides (also used by tests/inference)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def slide_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from teachseg.data.synth_slide import synthetic_slide

    path = tmp_path_factory.mktemp("slides") / "synth.tif"
    synthetic_slide(path, 1024, tissue_fraction=0.4, mpp=0.5, seed=3, tile=128)
    return path


@pytest.fixture(scope="session")
def blank_slide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from teachseg.data.synth_slide import write_pyramid_rgb

    rng = np.random.default_rng(0)
    glass = np.clip(rng.normal(240, 2, (512, 512, 3)), 0, 255).astype(np.uint8)
    path = tmp_path_factory.mktemp("slides") / "blank.tif"
    write_pyramid_rgb(path, glass, mpp=0.5, tile=128, min_side=128)
    return path
