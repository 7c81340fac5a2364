"""Which resolution a slide is predicted at, and tiles resampled to it.

The network must see tissue at the scale it was trained at. ``plan_resolution`` reads the coarsest pyramid
level that is still at least as fine as the model's um/px (within :data:`MPP_TOLERANCE`) and, unless that
level already matches, predicts on a *virtual level* at exactly the model's resolution: a grid whose
downsample from level 0 is ``model_mpp / slide_mpp``. :class:`ResampledReader` serves that virtual level,
reading ``tile * model_mpp / level_mpp`` level pixels per tile (plus a margin for the filter) and resizing
them with area averaging (anti-aliased) when shrinking, bicubic when enlarging. Blending, the probability
TIFF, the GeoJSON and the overlay then work on the virtual level exactly as on a real one: its downsample maps
every pixel back to level-0 coordinates, and the TIFF's resolution is the model's.

Where the slide's resolution comes from is recorded as ``mpp_source``:

* ``slide metadata``: the file's own level-0 um/px;
* ``--slide-mpp``: given by the user (overrides the file);
* ``ignored``: ``--ignore-mpp``, or an ordinary image (predicted at its own pixels);
* ``model has none``: the model folder records no um/px, so level 0 is predicted as it is;
* ``--level``: an explicit pyramid level, read as it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from teachseg.errors import DataError
from teachseg.wsi.readers import Level, SlideReader, choose_level

#: A level within 2% of the target resolution is read as it is (scanners round their um/px).
MPP_TOLERANCE = 0.02

SOURCE_METADATA = "slide metadata"
SOURCE_OPTION = "--slide-mpp"
SOURCE_IGNORED = "ignored"
SOURCE_MODEL_NONE = "model has none"
SOURCE_LEVEL = "--level"


@dataclass(frozen=True)
class Resolution:
    """Where a slide is read and at what scale the network sees it.

    Attributes:
        level: the pyramid level read.
        downsample: level-0 pixels per predicted pixel (the level's own, or the virtual level's).
        mpp: um/px of the predicted pixels (None when the slide's resolution is unknown or ignored).
        source: where the slide's resolution came from (see the module docstring).
    """

    level: int
    downsample: float
    mpp: float | None
    source: str

    def resampled(self, reader: SlideReader) -> bool:
        """Whether the plan resamples the chosen level (its downsample differs from the level's own)."""
        return not math.isclose(self.downsample, reader.levels[self.level].downsample, rel_tol=1e-9)


def plan_resolution(
    reader: SlideReader,
    target_mpp: float | None,
    *,
    level: int | None = None,
    ignore_mpp: bool = False,
    mpp_source: str = SOURCE_METADATA,
    target_name: str = "the model works at",
) -> Resolution:
    """Choose the level to read and the resolution to predict at.

    Args:
        reader: the slide (its ``mpp`` already set from ``--slide-mpp`` when given).
        target_mpp: the model's um/px (or ``--mpp``); None when the model records none.
        level: an explicit level (read as it is).
        ignore_mpp: predict at level 0 whatever the resolutions.
        mpp_source: where ``reader.mpp`` came from.
        target_name: what asks for ``target_mpp``, for the error when the slide has no resolution.

    Raises:
        DataError: the model has a resolution and the slide has none (and it was not ignored).
    """
    if level is not None:
        lv = reader.levels[choose_level(reader, None, level)]
        src = mpp_source if reader.mpp is not None else SOURCE_LEVEL
        return Resolution(lv.index, lv.downsample, reader.level_mpp(lv.index), src)
    if ignore_mpp:
        return Resolution(0, reader.levels[0].downsample, reader.mpp, SOURCE_IGNORED)
    if target_mpp is None:
        return Resolution(0, reader.levels[0].downsample, reader.mpp, SOURCE_MODEL_NONE)
    if reader.mpp is None:
        raise DataError(
            f"the slide records no resolution (um/px) and {target_name} {target_mpp:g} um/px",
            path=reader.path,
            fix="give --slide-mpp VALUE (the slide's level-0 um/px: about 0.25 at 40x, 0.5 at 20x), "
            "or --ignore-mpp to work at level 0 as it is",
        )
    mpp0 = reader.mpp
    fine = [lv for lv in reader.levels if mpp0 * lv.downsample <= target_mpp * (1 + MPP_TOLERANCE)]
    lv = max(fine, key=lambda v: v.downsample) if fine else reader.levels[0]
    level_mpp = mpp0 * lv.downsample
    if abs(level_mpp / target_mpp - 1) <= MPP_TOLERANCE:
        return Resolution(lv.index, lv.downsample, level_mpp, mpp_source)
    return Resolution(lv.index, target_mpp / mpp0, target_mpp, mpp_source)


class ResampledReader(SlideReader):
    """A one-level view of ``base`` at ``downsample`` from level 0, read from ``base``'s level ``level``.

    Regions are in virtual-level pixels; outside the slide they are white, as with every reader.
    """

    def __init__(self, base: SlideReader, level: int, downsample: float):
        w0, h0 = base.dimensions
        virtual = Level(0, max(1, round(w0 / downsample)), max(1, round(h0 / downsample)), downsample)
        super().__init__(base.path, [virtual], base.mpp, base.is_slide_format)
        self.backend = base.backend
        self.base, self.base_level = base, level
        #: level pixels per virtual pixel (> 1: the tile is shrunk from a larger region)
        self.scale = downsample / base.levels[level].downsample

    def read(self, level: int, x: int, y: int, w: int, h: int) -> np.ndarray:
        """Read a region in resampled-level coordinates (from the source level, resized)."""
        from PIL import Image

        s = self.scale
        bx0, by0, bx1, by1 = x * s, y * s, (x + w) * s, (y + h) * s
        pad = math.ceil(s) + 2  # real context for the filter's support at the region's edges
        ix0, iy0 = math.floor(bx0) - pad, math.floor(by0) - pad
        ix1, iy1 = math.ceil(bx1) + pad, math.ceil(by1) + pad
        region = self.base.read(self.base_level, ix0, iy0, ix1 - ix0, iy1 - iy0)
        resample = Image.Resampling.BOX if s > 1 else Image.Resampling.BICUBIC
        box = (bx0 - ix0, by0 - iy0, bx1 - ix0, by1 - iy0)
        return np.asarray(Image.fromarray(region).resize((w, h), resample, box=box))
