"""A small segmentation task built so that unlabelled images carry signal the labelled ones lack.

Grey 64 px images of bright blobs on a noisy, unevenly lit background. The few labelled images show the
blobs at high contrast; validation, test and the unlabelled pool show them at a lower, varying contrast
(a shift the labelled images do not cover). The pool spans that whole range, so it carries what the labelled
images lack: pseudo-labels of its clearest images extend the Teacher's reach (teacher_student), and
consistency between a weak view and a photometrically stronger one (mean_teacher, fixmatch) teaches the
network that contrast does not change the mask, on exactly the appearance it is tested on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from teachseg.data.discover import discover
from teachseg.data.split_record import Split
from teachseg.io import write_png
from teachseg.training.prepare import PreparedData


@dataclass(frozen=True)
class ShiftedTask:
    """The knobs of the task: image size, counts, and the blob contrast of each part."""

    size: int = 64
    n_labelled: int = 4
    n_unlabelled: int = 48
    n_val: int = 8
    n_test: int = 16
    labelled_contrast: tuple[float, float] = (0.5, 0.6)
    shifted_contrast: tuple[float, float] = (0.12, 0.3)
    noise: float = 0.04


def make_image(
    size: int, contrast: float, noise: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One ``(size, size, 3) uint8`` grey image and its ``bool`` mask: 1-3 elliptical blobs ``contrast``
    brighter than a background with a smooth illumination gradient and pixel noise."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    mask = np.zeros((size, size), bool)
    for _ in range(int(rng.integers(1, 4))):
        cy, cx = rng.uniform(0.2 * size, 0.8 * size, 2)
        ry, rx = rng.uniform(0.08 * size, 0.2 * size, 2)
        theta = rng.uniform(0, np.pi)
        u = (xx - cx) * np.cos(theta) + (yy - cy) * np.sin(theta)
        v = -(xx - cx) * np.sin(theta) + (yy - cy) * np.cos(theta)
        mask |= (u / rx) ** 2 + (v / ry) ** 2 <= 1.0
    gy, gx = rng.uniform(-0.1, 0.1, 2)
    background = 0.25 + gy * (yy / size - 0.5) + gx * (xx / size - 0.5)
    image = background + contrast * mask + rng.normal(0.0, noise, (size, size))
    grey = np.clip(np.round(255 * image), 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2), mask


def write_task(root: Path, task: ShiftedTask = ShiftedTask(), seed: int = 0) -> Path:
    """Write ``images/`` + ``masks/`` (labelled, validation and test, by name prefix) and ``unlabelled/``."""
    parts = {
        "lab": (task.n_labelled, task.labelled_contrast),
        "val": (task.n_val, task.shifted_contrast),
        "test": (task.n_test, task.shifted_contrast),
        "unl": (task.n_unlabelled, task.shifted_contrast),
    }
    for p, (part, (count, (lo, hi))) in enumerate(parts.items()):
        for i in range(count):
            rng = np.random.default_rng([seed, p, i])
            image, mask = make_image(task.size, float(rng.uniform(lo, hi)), task.noise, rng)
            if part == "unl":
                write_png(root / "unlabelled" / f"unl_{i:03d}.png", image)
            else:
                write_png(root / "images" / f"{part}_{i:03d}.png", image)
                write_png(root / "masks" / f"{part}_{i:03d}.png", mask.astype(np.uint8) * 255)
    return root


def task_data(root: Path, seed: int = 0) -> PreparedData:
    """The task's fixed split: ``lab_*`` train, ``val_*`` validate, ``test_*`` test, ``unlabelled/`` the pool."""
    discovery = discover(root)
    ids = sorted(s.id for s in discovery.samples)

    def named(prefix: str) -> list[str]:
        return [i for i in ids if Path(i).name.startswith(prefix)]

    split = Split(
        train=named("lab_"),
        val=named("val_"),
        test=named("test_"),
        unlabelled=named("unl_"),
        label_dropped=[],
        seed=seed,
        val_fraction=0.0,
        test_fraction=0.0,
        label_fraction=1.0,
        group_regex=None,
    )
    return PreparedData(root, discovery, split)
