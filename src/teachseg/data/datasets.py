"""Torch datasets over labelled, pseudo-labelled and evaluation images.

A :class:`Record` is one image with its target: hard masks (``masks``) or a soft pseudo-label PNG
(``pseudo``, 8-bit probability). Training items are ``(image, target, weight)`` at ``image_size``; evaluation
items keep the mask at native resolution so metrics are computed there.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from teachseg.data.imageio import read_image
from teachseg.data.masks import read_mask
from teachseg.data.transforms import JointTransform, Normalise, resize, to_float_image
from teachseg.losses import confidence_weight

#: Decoded images are cached in RAM up to this many bytes (per process, shared copy-on-write with workers).
CACHE_BYTES = 3 * 1024**3


@dataclass(frozen=True)
class Record:
    """One training or evaluation image."""

    id: str
    image: Path
    masks: tuple[Path, ...] = ()
    pseudo: Path | None = None
    cls: str | None = None

    @property
    def is_pseudo(self) -> bool:
        return self.pseudo is not None


def read_pseudo(path: Path) -> np.ndarray:
    """An 8-bit soft pseudo-label PNG -> float32 probabilities in [0, 1]."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L"), dtype=np.float32) / 255.0


class _Cache:
    def __init__(self, limit: int = CACHE_BYTES):
        self.items: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.bytes = 0
        self.limit = limit

    def get(self, i: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The cached decoded image and target of item ``i``, or None."""
        return self.items.get(i)

    def put(self, i: int, image: np.ndarray, target: np.ndarray) -> None:
        """Cache item ``i`` while the cache stays under its byte limit."""
        size = image.nbytes + target.nbytes
        if self.bytes + size <= self.limit:
            self.items[i] = (image, target)
            self.bytes += size


class SegmentationDataset(Dataset):
    """Training images with hard masks and/or soft pseudo-labels.

    Items are indexed by ``(index, epoch)`` (see :class:`EpochSampler`) so augmentation is reproducible; a
    plain integer index means epoch 0.

    Args:
        records: images with targets.
        image_size: side of the square training input.
        transform: joint augmentation.
        normalise: mean/std normalisation (the model's preprocessing).
        seed: base seed of the augmentation.
        confidence_mode, confidence_threshold: per-pixel confidence weighting of pseudo-labels. The weight of
            the pseudo-labelled images as a whole (``selftrain.pseudo_weight``) is the loss's, applied through
            each item's ``is_pseudo`` flag, not folded in here: normalised loss terms would cancel it.
        mat_variable: variable of ``.mat`` masks (automatic when None).
        cache: keep decoded images in RAM.
    """

    def __init__(
        self,
        records: Sequence[Record],
        image_size: int,
        transform: JointTransform,
        normalise: Normalise,
        seed: int = 0,
        confidence_mode: str = "linear",
        confidence_threshold: float = 0.6,
        mat_variable: str | None = None,
        cache: bool = True,
    ):
        self.records = list(records)
        self.image_size = image_size
        self.transform = transform
        self.normalise = normalise
        self.seed = seed
        self.confidence_mode = confidence_mode
        self.confidence_threshold = confidence_threshold
        self.mat_variable = mat_variable
        self.cache = _Cache() if cache else None

    def __len__(self) -> int:
        return len(self.records)

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Decoded (image uint8 (H, W, 3), target float32 (H, W))."""
        if self.cache is not None and (hit := self.cache.get(i)) is not None:
            return hit
        rec = self.records[i]
        image = read_image(rec.image)
        if rec.pseudo is not None:
            target = read_pseudo(rec.pseudo)
        else:
            target = read_mask(rec.masks, self.mat_variable, expected_shape=image.shape[:2]).astype(
                np.float32
            )
        if target.shape != image.shape[:2]:
            from teachseg.errors import DataError

            raise DataError(
                f"target {target.shape[::-1]} and image {image.shape[1::-1]} differ in size",
                path=rec.pseudo or (rec.masks[0] if rec.masks else rec.image),
                fix="regenerate the pseudo-labels or fix the mask",
            )
        if self.cache is not None:
            self.cache.put(i, image, target)
        return image, target

    def preload(self) -> None:
        """Decode every image once (before workers fork, so they share the cache)."""
        for i in range(len(self)):
            self.load(i)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        i, epoch = (key, 0) if isinstance(key, int) else key
        rec = self.records[i]
        image_np, target_np = self.load(i)
        image = to_float_image(image_np)
        target = torch.from_numpy(np.array(target_np, dtype=np.float32))[None]
        if rec.is_pseudo:
            weight = confidence_weight(target, self.confidence_mode, self.confidence_threshold)
        else:
            weight = torch.ones_like(target)
        rng = np.random.default_rng([self.seed, epoch, i])
        image, target, weight = self.transform(image, target, weight, rng, hard=not rec.is_pseudo)
        return {
            "image": self.normalise(image),
            "target": target,
            "weight": weight,
            "is_pseudo": torch.tensor(rec.is_pseudo),
        }


class EvalDataset(Dataset):
    """Evaluation images: the input resized to ``image_size`` and the mask at native resolution."""

    def __init__(
        self,
        records: Sequence[Record],
        image_size: int,
        normalise: Normalise,
        mat_variable: str | None = None,
    ):
        self.records = list(records)
        self.image_size = image_size
        self.normalise = normalise
        self.mat_variable = mat_variable
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict[str, object]:
        if i not in self._cache:
            rec = self.records[i]
            image = read_image(rec.image)
            mask = read_mask(rec.masks, self.mat_variable, expected_shape=image.shape[:2])
            x = self.normalise(resize(to_float_image(image), self.image_size))
            self._cache[i] = (x, torch.from_numpy(mask.astype(np.uint8)))
        x, native = self._cache[i]
        return {"image": x, "mask": native, "index": i}


def collate_eval(batch: list[dict[str, object]]) -> dict[str, object]:
    """Stack the images of an evaluation batch; masks stay a list, each at its image's native size."""
    return {
        "image": torch.stack([b["image"] for b in batch]),  # type: ignore[misc]
        "mask": [b["mask"] for b in batch],
        "index": [b["index"] for b in batch],
    }


class EpochSampler(Sampler):
    """Shuffles with a generator seeded by (seed, epoch) and yields ``(index, epoch)``; DDP-aware.

    Lightning calls :meth:`set_epoch` before each epoch (also after a resume), so the order and the
    augmentation of every epoch depend only on the seed: an interrupted and resumed run sees the same batches
    as an uninterrupted one.
    """

    def __init__(self, n: int, seed: int, num_replicas: int = 1, rank: int = 0):
        self.n = n
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that seeds this epoch's shuffle (as torch's DistributedSampler)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.n // self.num_replicas)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.n, generator=g).tolist()
        total = len(self) * self.num_replicas
        order += order[: total - len(order)]  # pad so every rank gets the same number of items
        for i in order[self.rank : total : self.num_replicas]:
            yield (i, self.epoch)
