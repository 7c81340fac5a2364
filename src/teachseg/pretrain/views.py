"""The images a pretraining learns from, decoded once, and their pairs of augmented views.

Views come from lightly's :class:`~lightly.transforms.SimCLRTransform` (random resized crop, flips,
rotations, colour jitter, grey scale, blur), with settings per modality, as the strong augmentation of the
online methods tells them apart (:mod:`teachseg.data.strong`):

* ``ultrasound``: grey images, so no hue, saturation or grey-scale changes; brightness and contrast (gain)
  and blur; horizontal flips only, since depth runs down the image (acoustic shadows fall below a lesion);
* ``he``: stain variation (hue and saturation jitter, some grey scale), and flips and 90-degree rotations,
  since a tissue section has no up;
* ``generic``: lightly's SimCLR defaults at half colour strength.

Every random draw of a view is seeded by ``(seed, epoch, index)`` (lightly's transforms draw from torch's and
NumPy's global generators, which are forked and seeded around each call), so a resumed pretraining sees the
same views as an uninterrupted one, whatever the number of loader workers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from teachseg.data.datasets import Record
from teachseg.errors import DataError
from teachseg.models import IMAGENET_MEAN, IMAGENET_STD

#: lightly ``SimCLRTransform`` settings per modality (see the module docstring).
MODALITY_VIEWS: dict[str, dict[str, Any]] = {
    "ultrasound": {
        "cj_prob": 0.8,
        "cj_bright": 0.4,
        "cj_contrast": 0.4,
        "cj_sat": 0.0,
        "cj_hue": 0.0,
        "random_gray_scale": 0.0,
        "gaussian_blur": 0.5,
        "sigmas": (0.1, 1.5),
        "hf_prob": 0.5,
        "vf_prob": 0.0,
        "rr_prob": 0.0,
        "min_scale": 0.2,
    },
    "he": {
        "cj_prob": 0.8,
        "cj_bright": 0.4,
        "cj_contrast": 0.4,
        "cj_sat": 0.4,
        "cj_hue": 0.1,
        "random_gray_scale": 0.2,
        "gaussian_blur": 0.5,
        "sigmas": (0.1, 2.0),
        "hf_prob": 0.5,
        "vf_prob": 0.5,
        "rr_prob": 0.5,
        "min_scale": 0.2,
    },
    "generic": {"cj_strength": 0.5, "min_scale": 0.2},
}


def view_transform(modality: str, size: int) -> Any:
    """lightly's two-view SimCLR transform for ``modality``, ``size`` px square views, normalised as the
    segmentation models' inputs are (ImageNet mean and std, :data:`teachseg.models.IMAGENET_MEAN`)."""
    from lightly.transforms import SimCLRTransform

    if modality not in MODALITY_VIEWS:
        raise ValueError(f"unknown modality {modality!r}; use one of {', '.join(MODALITY_VIEWS)}")
    return SimCLRTransform(
        input_size=size,
        normalize={"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
        **MODALITY_VIEWS[modality],
    )


def load_pool(
    records: Sequence[Record], size: int, *, skip_bad: bool = False
) -> tuple[list[np.ndarray], list[Record], list[dict[str, str]]]:
    """Decode every image once, resized to ``size`` x ``size`` as training resizes them (uint8, H x W x 3).

    Returns the images, the records kept and the ones left out (``skip_bad``) with the reason.

    Raises:
        DataError: unreadable images (listed, at most 10 named), unless ``skip_bad``.
    """
    from teachseg.data.imageio import read_image
    from teachseg.data.transforms import resize, to_float_image

    images: list[np.ndarray] = []
    kept: list[Record] = []
    bad: list[dict[str, str]] = []
    for rec in records:
        try:
            image = read_image(rec.image)
        except DataError as exc:
            bad.append({"id": rec.id, "path": str(rec.image), "error": str(exc)})
            continue
        small = resize(to_float_image(image), size).mul_(255.0).round_().clamp_(0, 255)
        images.append(small.to(torch.uint8).permute(1, 2, 0).contiguous().numpy())
        kept.append(rec)
    if bad and not skip_bad:
        listed = ", ".join(b["path"] for b in bad[:10]) + (
            f" and {len(bad) - 10} more" if len(bad) > 10 else ""
        )
        raise DataError(
            f"{len(bad)} training image(s) cannot be read for pretraining: {listed}",
            fix="fix or remove them, or pass --skip-bad (selftrain.skip_bad) to leave them out "
            "(they are listed in pretrain.json)",
        )
    return images, kept, bad


@contextlib.contextmanager
def seeded_global_rng(seed: int) -> Iterator[None]:
    """Seed torch's and NumPy's global generators for the block, restoring both afterwards."""
    state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        try:
            yield
        finally:
            np.random.set_state(state)


class PretrainViews(Dataset):
    """Two augmented views of each image; items are indexed by ``(index, epoch)``
    (:class:`teachseg.data.datasets.EpochSampler`), a plain index meaning epoch 0."""

    def __init__(self, images: Sequence[np.ndarray], transform: Any, seed: int = 0):
        self.images = list(images)
        self.transform = transform
        self.seed = seed

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        from PIL import Image

        i, epoch = (key, 0) if isinstance(key, int) else key
        seed = int(np.random.SeedSequence([self.seed, epoch, i]).generate_state(1)[0])
        with seeded_global_rng(seed):
            a, b = self.transform(Image.fromarray(self.images[i]))
        return a, b
