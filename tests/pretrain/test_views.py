"""Views: modality-aware lightly transforms, reproducible per (seed, epoch, index), and the pool loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from teachseg.data.datasets import Record
from teachseg.errors import DataError
from teachseg.pretrain.views import MODALITY_VIEWS, PretrainViews, load_pool, view_transform


def _stripes(size: int = 32) -> np.ndarray:
    """A grey image whose top half is bright: any vertical flip or rotation moves that half."""
    image = np.zeros((size, size, 3), np.uint8)
    image[: size // 2] = 200
    image[size // 2 :] = 40
    return image


def test_ultrasound_views_keep_grey_and_depth(tmp_path: Path) -> None:
    views = PretrainViews([_stripes()] * 4, view_transform("ultrasound", 32), seed=0)
    both_halves = 0
    for key in [(i, e) for i in range(4) for e in range(6)]:
        for v in views[key]:
            assert v.shape == (3, 32, 32)
            assert torch.allclose(v[0] * 0.229 + 0.485, v[1] * 0.224 + 0.456, atol=1e-4)  # still grey
            rows = v[0].mean(dim=1)
            # the bright side stays on top (a crop may hold one half only): no vertical flip or rotation
            assert rows[:4].mean() >= rows[-4:].mean() - 1e-4
            both_halves += int(rows[:4].mean() > rows[-4:].mean() + 0.5)
    assert both_halves > 0


def _hue(view: torch.Tensor) -> tuple[float, float]:
    """(hue, saturation) of a view's mean colour, de-normalised."""
    import colorsys

    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    r, g, b = (view * std + mean).clamp(0, 1).mean(dim=(1, 2)).tolist()
    h, s, _ = colorsys.rgb_to_hsv(r, g, b)
    return h, s


def test_he_views_rotate_and_shift_the_stain() -> None:
    # one hue, bright on top: brightness, contrast, blur and crops keep the hue; only stain (hue) jitter moves it
    image = _stripes().astype(np.float32) / 200.0  # 1 on top, 0.2 below
    pink = (image * np.array([120, 60, 90], np.float32)).astype(np.uint8)  # dark enough that no jitter clips
    hue0, _ = colorsys_hue(pink)
    views = PretrainViews([pink] * 4, view_transform("he", 32), seed=0)
    turned = shifted = 0
    for key in [(i, e) for i in range(4) for e in range(6)]:
        for v in views[key]:
            rows = v[0].mean(dim=1)
            turned += int(rows[:4].mean() < rows[-4:].mean() - 0.5)  # bright side no longer on top
            hue, sat = _hue(v)
            shifted += int(sat > 0.05 and min(abs(hue - hue0), 1 - abs(hue - hue0)) > 0.02)
    assert turned > 0 and shifted > 0
    assert MODALITY_VIEWS["ultrasound"]["vf_prob"] == 0 and MODALITY_VIEWS["ultrasound"]["rr_prob"] == 0


def colorsys_hue(image: np.ndarray) -> tuple[float, float]:
    import colorsys

    r, g, b = (image.reshape(-1, 3).mean(axis=0) / 255.0).tolist()
    h, s, _ = colorsys.rgb_to_hsv(r, g, b)
    return h, s


def test_views_are_reproducible_per_epoch_and_index() -> None:
    image = np.random.default_rng(0).integers(0, 255, (48, 48, 3), dtype=np.uint8)
    views = PretrainViews([image, image], view_transform("he", 32), seed=3)
    torch.manual_seed(123)
    np.random.seed(123)
    first = views[(1, 2)]
    state = torch.get_rng_state()
    again = views[(1, 2)]
    assert torch.equal(torch.get_rng_state(), state)  # the global generators are left as they were
    assert all(torch.equal(x, y) for x, y in zip(first, again, strict=True))
    assert not torch.equal(first[0], first[1])  # two different views
    assert not torch.equal(views[(1, 3)][0], first[0])  # another epoch, other views
    assert not torch.equal(
        PretrainViews([image, image], view_transform("he", 32), seed=4)[(1, 2)][0], first[0]
    )


def test_load_pool_resizes_and_names_unreadable_images(tmp_path: Path) -> None:
    from PIL import Image

    good = tmp_path / "good.png"
    Image.fromarray(_stripes(40)).save(good)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    recs = [Record("good", good), Record("bad", bad)]
    with pytest.raises(DataError, match=r"1 training image\(s\) cannot be read.*bad.png.*--skip-bad"):
        load_pool(recs, 32)
    images, kept, skipped = load_pool(recs, 32, skip_bad=True)
    assert [r.id for r in kept] == ["good"] and images[0].shape == (32, 32, 3) and images[0].dtype == np.uint8
    assert skipped[0]["id"] == "bad" and "bad.png" in skipped[0]["error"]


def test_unknown_modality_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown modality"):
        view_transform("mri", 32)
