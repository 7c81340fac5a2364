"""A synthetic task where features learnt without labels help segmentation: striped shapes on striped ground.

Each grey 64 px image holds an ellipse of horizontal stripes on a ground of vertical stripes, of the same random
period (7-13 px) and contrast, under pixel noise and a random gain and offset: brightness says nothing about the
mask, the stripes' orientation says all. What pretraining's views change (crops that zoom up to 2.2x, gain,
blur, horizontal flips: the ultrasound views, see :mod:`teachseg.pretrain.views`) keeps the orientation, so an
objective that tells locations apart (DenseCL) can learn it from unlabelled images.

A first version told the mask by texture scale (fine noise on coarse noise): there the views' zoom changes the
very cue, and pretraining longer made fine-tuning worse than its random start.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from teachseg.data.datasets import Record


def striped_image(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One (H, W, 3) uint8 grey image and its (H, W) bool mask."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    cy, cx = rng.uniform(0.3, 0.7, 2) * size
    ry, rx = rng.uniform(0.15, 0.3, 2) * size
    mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    freq = rng.uniform(0.5, 0.9)
    phase_y, phase_x = rng.uniform(0, 2 * np.pi, 2)
    stripes = np.where(mask, np.sin(freq * yy + phase_y), np.sin(freq * xx + phase_x))
    texture = 1.4 * stripes + 0.5 * rng.normal(size=(size, size))
    grey = 0.5 + rng.uniform(-0.15, 0.15) + rng.uniform(0.08, 0.2) * texture
    g = (np.clip(grey, 0, 1) * 255).astype(np.uint8)
    return np.stack([g] * 3, axis=-1), mask


def striped_set(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images (N, H, W, 3) uint8 and masks (N, H, W) bool."""
    rng = np.random.default_rng(seed)
    pairs = [striped_image(rng, size) for _ in range(n)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def write_pool(folder: Path, images: np.ndarray) -> list[Record]:
    """The images as PNG files (the pool a pretraining reads), as records."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for i, image in enumerate(images):
        path = folder / f"{i:04d}.png"
        Image.fromarray(image).save(path)
        records.append(Record(id=path.stem, image=path))
    return records
