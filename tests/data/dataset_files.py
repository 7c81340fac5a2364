"""Tiny dataset files for the discovery tests: images, masks and a BUSI-like folder, written on the fly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from teachseg.data.records import Sample

BUSI = Path(__file__).resolve().parents[2] / "../shared/data/busi"
H, W = 12, 14


def write_image(path: Path, value: int = 120, shape: tuple[int, int] = (H, W)) -> Path:
    """A flat RGB image of one grey value."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*shape, 3), value, np.uint8)).save(path)
    return path


def write_mask(path: Path, box: tuple[slice, slice] | None = None, shape: tuple[int, int] = (H, W)) -> Path:
    """A 0/255 mask, foreground in ``box`` (all background without one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    m = np.zeros(shape, np.uint8)
    if box is not None:
        m[box] = 255
    Image.fromarray(m).save(path)
    return path


def write_mask01(path: Path, stem_value: int = 1) -> Path:
    """A 0/1 mask (the other common encoding beside 0/255)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    m = np.zeros((H, W), np.uint8)
    m[2:6, 3:9] = stem_value
    Image.fromarray(m).save(path)
    return path


def write_photo(path: Path, seed: int = 0) -> Path:
    """A textured RGB image (many values), saved in the format of the suffix (.tif included)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def make_busi_folder(root: Path) -> Path:
    """A small BUSI-like folder: two benign images (one with an extra mask) and one normal image."""
    for i in (1, 2):
        write_photo(root / "benign" / f"benign ({i}).png", seed=i)
        write_mask(root / "benign" / f"benign ({i})_mask.png", (slice(0, 4), slice(0, 4)))
    write_mask(root / "benign" / "benign (2)_mask_1.png", (slice(6, 9), slice(6, 9)))
    write_photo(root / "normal" / "normal (1).png", seed=9)
    write_mask(root / "normal" / "normal (1)_mask.png")
    return root


def is_mask_name(sample: Sample) -> bool:
    """Whether a sample's image is named or placed like a mask."""
    return "_mask" in sample.image.name or "masks" in sample.image.parts
