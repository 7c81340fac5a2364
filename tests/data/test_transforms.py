"""Joint augmentation: determinism per (seed, epoch, index), alignment of image, target and weight."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from teachseg.config import AugmentConfig
from teachseg.data.transforms import JointTransform, Normalise, resize, to_float_image


def _aligned_sample(size: int = 48) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """An image whose red channel is the mask, an asymmetric mask, and a weight map equal to the mask."""
    mask = torch.zeros(1, size, size)
    mask[0, 4:20, 6:30] = 1  # off-centre rectangle: every flip and rotation moves it
    mask[0, 30:44, 36:40] = 1
    g = torch.Generator().manual_seed(0)
    image = torch.rand(3, size, size, generator=g) * 0.5
    image[0] = mask[0]
    return image, mask, mask.clone()


def test_to_float_image_and_normalise() -> None:
    arr = np.zeros((4, 5, 3), np.uint8)
    arr[..., 0] = 255
    t = to_float_image(arr)
    assert t.shape == (3, 4, 5) and t.dtype == torch.float32
    assert float(t[0].min()) == 1.0 and float(t[1:].max()) == 0.0
    n = Normalise((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))(t)
    assert torch.allclose(n[0], torch.full((4, 5), 2.0)) and torch.allclose(n[1], torch.full((4, 5), -2.0))
    assert resize(t, (8, 10)).shape == (3, 8, 10)
    assert resize(t, (4, 5)) is t


def test_same_rng_seed_gives_the_same_augmentation() -> None:
    image, mask, weight = _aligned_sample()
    tf = JointTransform(32, AugmentConfig())
    a = tf(image, mask, weight, np.random.default_rng([0, 3, 7]))
    b = tf(image, mask, weight, np.random.default_rng([0, 3, 7]))
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    outs = [tf(image, mask, weight, np.random.default_rng([0, e, 7]))[0] for e in range(4)]
    assert any(not torch.equal(outs[0], o) for o in outs[1:])


@pytest.mark.parametrize("seed", range(12))
def test_image_target_and_weight_stay_aligned(seed: int) -> None:
    image, mask, weight = _aligned_sample()
    cfg = AugmentConfig(color_jitter=0.0)  # keep the red channel equal to the mask
    img, tgt, w = JointTransform(32, cfg)(image, mask, weight, np.random.default_rng(seed))
    assert img.shape == (3, 32, 32) and tgt.shape == (1, 32, 32) and w.shape == (1, 32, 32)
    assert set(torch.unique(tgt).tolist()) <= {0.0, 1.0}  # hard targets stay binary (nearest)
    assert torch.equal(tgt, w)
    # bilinear image vs nearest mask differ only along edges: compare away from them
    agree = ((img[0] > 0.5).float() == tgt[0]).float().mean()
    assert agree > 0.93


def test_flips_and_rotations_are_exact_and_all_occur(monkeypatch: pytest.MonkeyPatch) -> None:
    import teachseg.data.transforms as T

    monkeypatch.setattr(T, "_crop_box", lambda rng, h, w, s: (0, 0, h, w))  # no crop: geometry only
    image, mask, weight = _aligned_sample(32)
    cfg = AugmentConfig(color_jitter=0.0)
    variants = {}
    for k in range(4):
        for flip in ([], [-1], [-2], [-2, -1]):
            m = torch.rot90(mask.flip(flip) if flip else mask, k, dims=(-2, -1))
            variants.setdefault(m.numpy().tobytes(), (k, tuple(flip)))
    seen = set()
    for seed in range(40):
        img, tgt, w = JointTransform(32, cfg)(image, mask, weight, np.random.default_rng(seed))
        assert torch.equal(img[0], tgt[0]) and torch.equal(tgt, w)  # pixel-exact alignment
        key = tgt.numpy().tobytes()
        assert key in variants  # a true flip/rotation of the mask
        seen.add(key)
    assert len(seen) == len(variants) == 8  # the dihedral group, all of it


def test_disabled_augmentation_only_resizes() -> None:
    image, mask, weight = _aligned_sample()
    img, tgt, w = JointTransform(32, AugmentConfig(enabled=False))(
        image, mask, weight, np.random.default_rng(0)
    )
    assert torch.allclose(img, resize(image, 32))
    assert torch.equal(tgt, resize(mask, 32, "nearest"))


def test_soft_targets_are_interpolated_and_strong_noise_changes_pixels() -> None:
    image, mask, _ = _aligned_sample()
    soft = mask * 0.8 + 0.1
    tf = JointTransform(32, AugmentConfig())
    _, tgt, _ = tf(image, soft, torch.ones_like(soft), np.random.default_rng(1), hard=False)
    assert float(tgt.min()) >= 0.1 - 1e-6 and float(tgt.max()) <= 0.9 + 1e-6
    # interpolated, not picked: the rectangle's edges take values between its two levels (nearest would not)
    assert bool(((tgt > 0.12) & (tgt < 0.88)).any())
    _, hard, _ = tf(image, soft, torch.ones_like(soft), np.random.default_rng(1), hard=True)
    assert torch.isclose(hard, torch.tensor(0.1)).logical_or(torch.isclose(hard, torch.tensor(0.9))).all()
    plain = tf(image, mask, mask, np.random.default_rng(2))[0]
    strong = JointTransform(32, AugmentConfig(), strong=True)(image, mask, mask, np.random.default_rng(2))[0]
    assert plain.shape == strong.shape
    assert not torch.equal(plain, strong)
