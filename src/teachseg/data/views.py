"""Unlabelled images as aligned weak and strong views, for the online semi-supervised methods.

The weak view is the training augmentation (:class:`~teachseg.data.transforms.JointTransform`: crop, flips,
rotations, mild colour); each strong view is made *from the weak view* by photometric changes only
(:mod:`teachseg.data.strong`), so the weak view's prediction is a pixel-aligned target for it. Views are
seeded by ``(seed, epoch, index)`` like :class:`~teachseg.data.datasets.SegmentationDataset`'s items, so a
resumed run sees the same views.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from teachseg.data.datasets import Record, _Cache
from teachseg.data.imageio import read_image
from teachseg.data.strong import apply_strong
from teachseg.data.transforms import JointTransform, Normalise, to_float_image

_NO_TARGET = np.empty(0, dtype=np.float32)


class UnlabelledViews(Dataset):
    """Items ``{"weak", "strong"[, "strong2"]}``: normalised (3, S, S) views of one unlabelled image.

    Args:
        records: the unlabelled images.
        image_size: side of the square views.
        transform: the weak (joint) augmentation.
        normalise: the model's mean/std normalisation.
        strong: an albumentations pipeline from :func:`teachseg.data.strong.strong_pipeline`.
        seed: base seed.
        two_strong: add a second, independently drawn strong view (UniMatch).
        cache: keep decoded images in RAM.
    """

    def __init__(
        self,
        records: Sequence[Record],
        image_size: int,
        transform: JointTransform,
        normalise: Normalise,
        strong: Any,
        seed: int = 0,
        two_strong: bool = False,
        cache: bool = True,
    ):
        self.records = list(records)
        self.image_size = image_size
        self.transform = transform
        self.normalise = normalise
        self.strong = strong
        self.seed = seed
        self.two_strong = two_strong
        # the same RAM budget as the labelled images' cache (a large unlabelled pool must not exhaust memory)
        self._cache = _Cache() if cache else None

    def __len__(self) -> int:
        return len(self.records)

    def load(self, i: int) -> np.ndarray:
        """The decoded image, uint8 (H, W, 3)."""
        if self._cache is not None and (hit := self._cache.get(i)) is not None:
            return hit[0]
        image = read_image(self.records[i].image)
        if self._cache is not None:
            self._cache.put(i, image, _NO_TARGET)
        return image

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        i, epoch = (key, 0) if isinstance(key, int) else key
        image = to_float_image(self.load(i))
        blank = torch.zeros((1, *image.shape[-2:]), dtype=torch.float32)
        rng = np.random.default_rng([self.seed, epoch, i, 1])
        weak, _, _ = self.transform(image, blank, blank, rng, hard=True)
        base = int(rng.integers(0, 2**31 - 1))
        out = {"weak": weak, "strong": apply_strong(self.strong, weak, base)}
        if self.two_strong:
            out["strong2"] = apply_strong(self.strong, weak, base + 1)
        return {k: self.normalise(v) for k, v in out.items()}
