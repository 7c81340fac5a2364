"""Pixel limits checked before decoding, so that a corrupt or hostile header cannot exhaust memory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from teachseg.errors import DataError

#: Images (and ``.mat`` masks) declaring more pixels than this are refused before decoding, so that a
#: corrupt or hostile header cannot exhaust memory; ``TEACHSEG_MAX_IMAGE_PIXELS`` overrides it.
MAX_IMAGE_PIXELS = 250_000_000
MAX_PIXELS_ENV = "TEACHSEG_MAX_IMAGE_PIXELS"


def max_image_pixels() -> int:
    """The pixel limit in effect: ``TEACHSEG_MAX_IMAGE_PIXELS`` when set, else :data:`MAX_IMAGE_PIXELS`."""
    text = os.environ.get(MAX_PIXELS_ENV, "").strip().replace("_", "")
    if not text:
        return MAX_IMAGE_PIXELS
    try:
        value = int(float(text))
    except ValueError:
        value = 0
    if value <= 0:
        raise DataError(
            f"{MAX_PIXELS_ENV}={os.environ[MAX_PIXELS_ENV]!r} is not a positive number of pixels",
            fix=f"set {MAX_PIXELS_ENV} to e.g. 250000000, or unset it",
        )
    return value


def check_pixels(path: Path, height: int, width: int) -> None:
    """Refuse an image whose header declares more than :func:`max_image_pixels` pixels."""
    limit = max_image_pixels()
    if height * width > limit:
        raise DataError(
            f"declares {height}x{width} (HxW) = {height * width} pixels, more than the limit of {limit} pixels",
            path=path,
            fix=f"if the image is genuine, raise the limit with {MAX_PIXELS_ENV}; else re-export the file",
        )


@contextmanager
def pillow_without_bomb_check() -> Iterator[None]:
    """Switch off Pillow's own decompression-bomb limit while teachseg applies :func:`check_pixels`."""
    from PIL import Image

    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved
