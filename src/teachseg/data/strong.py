"""Strong augmentation for the online semi-supervised methods: photometric noise per image, CutMix per batch.

FixMatch-style methods need two views of one unlabelled image that are pixel-aligned: a weak view (the usual
crop/flip/rotation, from :class:`teachseg.data.transforms.JointTransform`) whose prediction becomes the target,
and a strong view made from the weak one by changes that move no pixel. The photometric part comes from
albumentations (maintained, fast, seedable per image): colour and contrast, gamma, blur, Gaussian noise, and,
for ultrasound, multiplicative noise that looks like speckle. CutMix (Yun et al. 2019; used on segmentation
by UniMatch) pastes a box of another image of the batch, and the same box of its target; torchvision's and
kornia's CutMix mix class labels, not masks, so the box is drawn here. :func:`modality_of` tells grey ultrasound
from H&E.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

if TYPE_CHECKING:
    from teachseg.data.datasets import Record

Modality = Literal["ultrasound", "he", "generic"]


def modality_of(records: Sequence[Record], modality: str) -> str:
    """``modality`` as set, or with ``auto`` the modality of all ``records`` by the one rule of
    :func:`teachseg.data.modality.dataset_modality` (a run gets its dataset's, from ``split.json``: see
    :meth:`teachseg.training.prepare.PreparedData.modality`)."""
    from teachseg.data.modality import dataset_modality

    if modality != "auto":
        return modality
    return dataset_modality(r.image for r in records)


def strong_pipeline(modality: Modality = "generic", strength: float = 1.0) -> Any:
    """An albumentations ``Compose`` of photometric-only transforms for ``modality`` (float images in [0, 1]).

    ``strength`` scales every range (0 gives the identity). Nothing here moves a pixel, so a weak view and its
    strong view stay aligned with the weak view's pseudo-label.
    """
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # never phone home from a clinical tool
    import albumentations as A

    s = max(float(strength), 0.0)
    if s == 0:
        return A.Compose([A.NoOp()])
    jitter = min(0.4 * s, 0.9)
    transforms: list[Any] = [
        A.ColorJitter(
            brightness=jitter,
            contrast=jitter,
            saturation=0.0 if modality == "ultrasound" else jitter,
            hue=0.0 if modality == "ultrasound" else min(0.05 * s, 0.5),
            p=0.8,
        ),
        A.RandomGamma(gamma_limit=(max(1, int(100 - 30 * s)), int(100 + 30 * s)), p=0.3),
        A.GaussianBlur(blur_limit=(3, 7), sigma_limit=(0.1, 2.0 * s), p=0.5),
        A.GaussNoise(std_range=(0.0, min(0.08 * s, 0.5)), p=0.5),
    ]
    if modality == "ultrasound":
        # speckle: multiplicative noise, the grain of coherent ultrasound imaging
        transforms.append(
            A.MultiplicativeNoise(
                multiplier=(1 - 0.25 * s, 1 + 0.25 * s), per_channel=False, elementwise=True, p=0.5
            )
        )
    elif modality == "he":
        # stain variation: H&E colour differs between labs and scanners
        transforms.append(
            A.HueSaturationValue(
                hue_shift_limit=int(8 * s), sat_shift_limit=int(20 * s), val_shift_limit=0, p=0.5
            )
        )
    return A.Compose(transforms)


def apply_strong(pipeline: Any, image: torch.Tensor, seed: int) -> torch.Tensor:
    """Apply ``pipeline`` to a (3, H, W) float image in [0, 1], reproducibly for ``seed``."""
    hwc = np.ascontiguousarray(image.permute(1, 2, 0).numpy(), dtype=np.float32)
    pipeline.set_random_seed(int(seed) % (2**32))
    out = pipeline(image=hwc)["image"]
    return torch.from_numpy(np.clip(out, 0.0, 1.0).astype(np.float32)).permute(2, 0, 1).contiguous()


def cutmix_boxes(
    batch: int,
    height: int,
    width: int,
    generator: torch.Generator,
    p: float = 0.5,
    area: tuple[float, float] = (0.02, 0.4),
) -> torch.Tensor:
    """Boolean (B, 1, H, W) masks: True inside each image's pasted box (none with probability ``1 - p``).

    Box area is a uniform share of the image in ``area`` with an aspect ratio in [0.3, 1/0.3], as in UniMatch.
    """
    masks = torch.zeros(batch, 1, height, width, dtype=torch.bool)
    for b in range(batch):
        if float(torch.rand((), generator=generator)) >= p:
            continue
        share = float(torch.empty(()).uniform_(area[0], area[1], generator=generator))
        ratio = float(torch.empty(()).uniform_(0.3, 1 / 0.3, generator=generator))
        h = min(height, max(1, round((share * height * width / ratio) ** 0.5)))
        w = min(width, max(1, round((share * height * width * ratio) ** 0.5)))
        top = int(torch.randint(0, height - h + 1, (), generator=generator))
        left = int(torch.randint(0, width - w + 1, (), generator=generator))
        masks[b, 0, top : top + h, left : left + w] = True
    return masks


def cutmix(
    images: torch.Tensor, targets: list[torch.Tensor], boxes: torch.Tensor, order: torch.Tensor
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Paste, inside each box, the pixels of image ``order[b]`` (and the same pixels of every target)."""
    boxes = boxes.to(images.device)
    mixed = torch.where(boxes, images[order], images)
    return mixed, [torch.where(boxes, t[order], t) for t in targets]
