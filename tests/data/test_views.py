"""Unlabelled views: the strong view is made from the weak one, so the weak view's prediction is its target."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from teachseg.config import AugmentConfig
from teachseg.data.datasets import Record
from teachseg.data.strong import strong_pipeline
from teachseg.data.transforms import JointTransform, Normalise
from teachseg.data.views import UnlabelledViews
from tests.data.geometry import MOVES, blocks, corr, moved

SIZE = 48
NORM = Normalise((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


@pytest.fixture(scope="module")
def blocks_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 96 px picture of flat random blocks (sharp edges everywhere, nothing periodic)."""
    path = tmp_path_factory.mktemp("views") / "blocks.png"
    image = (blocks(96, 8, seed=4).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    Image.fromarray(image).save(path)
    return path


def _views(path: Path, strength: float, two_strong: bool = False) -> UnlabelledViews:
    transform = JointTransform(SIZE, AugmentConfig(color_jitter=0.0))
    return UnlabelledViews(
        [Record("b", path)], SIZE, transform, NORM, strong_pipeline("ultrasound", strength), 7, two_strong
    )


def test_with_no_photometric_noise_the_strong_view_is_the_weak_view(blocks_png):
    """Strength 0 makes the photometric pipeline the identity, so the strong view must be the weak view,
    crop, flips and rotation included; a strong view made from the un-augmented image would differ."""
    ds = _views(blocks_png, 0.0, two_strong=True)
    weak_views = []
    for epoch in range(4):
        item = ds[(0, epoch)]
        assert torch.equal(item["strong"], item["weak"]) and torch.equal(item["strong2"], item["weak"])
        weak_views.append(item["weak"])
    assert any(not torch.equal(weak_views[0], v) for v in weak_views[1:])  # the weak view is augmented


def test_strong_views_stay_aligned_with_the_weak_view(blocks_png):
    """With the real noise, each strong view matches the weak view in place better than the weak view moved
    by 1-3 pixels or rotated by 5-10 degrees; the two strong views are drawn independently."""
    ds = _views(blocks_png, 1.0, two_strong=True)
    independent = []
    for epoch in range(6):
        item = ds[(0, epoch)]
        weak = item["weak"].mean(0)
        for key in ("strong", "strong2"):
            out = item[key].mean(0)
            in_place = corr(out, weak)
            assert all(in_place > corr(out, moved(weak, *m)) for m in MOVES), (epoch, key)
        independent.append(not torch.equal(item["strong"], item["strong2"]))
    assert sum(independent) >= 4  # (each noise is drawn with a probability: both may draw none)
