"""What kind of images a dataset holds, decided once from all of them: grey ultrasound or colour H&E.

The decision picks the flavour of the online methods' strong augmentation (speckle for ultrasound, stain
shifts for H&E, see :func:`teachseg.data.strong.strong_pipeline`). It reads every image of the dataset
(labelled and unlabelled, every split: it is no label information), so every seed, split and method of one
dataset gets the same answer; it is recorded in ``split.json`` and in each run's summary.

Rule: ``ultrasound`` when more than half of the readable images are grey (all three channels equal in every
pixel), else ``he``; ``generic`` when no image can be read. BUSI, for instance, has 600 grey images and 12
with coloured annotations: ultrasound. (Looking at the first few images instead, as teachseg did before,
gave H&E for one seed of BUSI and ultrasound for the others.)
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import numpy as np

from teachseg.errors import DataError


def is_grey(image: np.ndarray) -> bool:
    """Whether an (H, W, 3) image has three equal channels in every pixel."""
    return bool(np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2]))


def dataset_modality(images: Iterable[Path]) -> str:
    """``ultrasound`` when most of ``images`` are grey, else ``he`` (``generic`` when none can be read).

    Decoded once per set of files (keyed by path, size and modification time), so the runs of one experiment
    share the answer.
    """
    stats = []
    for path in sorted({Path(p) for p in images}):
        try:
            st = path.stat()
        except OSError:
            continue
        stats.append((str(path), st.st_size, st.st_mtime_ns))
    return _decide(tuple(stats))


@lru_cache(maxsize=16)
def _decide(files: tuple[tuple[str, int, int], ...]) -> str:
    from teachseg.data.imageio import read_image

    grey = readable = 0
    for path, _, _ in files:
        try:
            image = read_image(Path(path))
        except DataError:
            continue  # training reports unreadable images; they take no part in this decision
        readable += 1
        grey += is_grey(image)
    if not readable:
        return "generic"
    return "ultrasound" if 2 * grey > readable else "he"
