"""The scale the network sees tiles at, from the manifests ``teachseg data tile`` writes.

Training resizes every image to ``data.image_size`` pixels a side, so a tile of ``size`` pixels cut at ``mpp``
um/px reaches the network at ``mpp * size / image_size`` um/px: 512 px tiles at 0.5 um/px trained at 256 px are
seen at 1.0 um/px. That scale is what a model records (``mpp`` in ``teachseg.json``) and what ``predict`` reads
slides at; recording the tiles' own 0.5 would make ``predict`` feed tissue at twice the magnification the model
was validated on. Tiles are square, so the scale is the same along both axes.

Manifests (``ROOT/SLIDE_tiles.json``) that give scales more than :data:`~teachseg.wsi.resolution.MPP_TOLERANCE`
apart (tiles of several sizes or resolutions) have no one scale to record and are refused; scales within it
(slides scanned at 0.2525 and 0.2527 um/px) are averaged over the tiles. A manifest without a usable ``mpp``
(not one ``teachseg data tile`` wrote, or a slide without resolution) gives no scale; one without ``size``
(hand-made) takes the side of its first tile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from teachseg.errors import ConfigError, DataError
from teachseg.wsi.resolution import MPP_TOLERANCE

TILE_MANIFEST_GLOB = "*_tiles.json"


@dataclass(frozen=True)
class TileScale:
    """What one manifest says: its tiles' um/px and side, how many tiles, and the scale the network sees."""

    manifest: Path
    mpp: float
    size: int
    tiles: int
    image_size: int

    @property
    def seen_mpp(self) -> float:
        """um/px of the tiles once resized to ``image_size``."""
        return self.mpp * self.size / self.image_size

    def describe(self) -> str:
        """``"512 px tiles at 0.5 um/px, seen at 1 um/px"``."""
        return f"{self.size} px tiles at {self.mpp:g} um/px, seen at {self.seen_mpp:g} um/px"


def manifest_scales(root: Path, image_size: int) -> list[TileScale]:
    """The scale of each tile manifest directly under ``root`` that records a resolution (sorted by file
    name). The tile side is the manifest's ``size``, else that of its first tile found under ``root``.
    Unreadable or foreign manifests are skipped (``data check`` reads them again)."""
    from teachseg.io import read_json

    out = []
    for manifest in sorted(Path(root).glob(TILE_MANIFEST_GLOB)):
        try:
            data = read_json(manifest)
            mpp = float(data["mpp"])
            tiles = data.get("tiles", [])
        except (OSError, ValueError, AttributeError, KeyError, TypeError, OverflowError, RecursionError):
            continue
        tiles = tiles if isinstance(tiles, list) else []
        size = data.get("size")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            size = _first_tile_side(Path(root), tiles)
        if math.isfinite(mpp) and mpp > 0 and size is not None:
            out.append(TileScale(manifest, mpp, size, len(tiles), image_size))
    return out


def _first_tile_side(root: Path, tiles: list[object]) -> int | None:
    """The side of the first listed tile found as ``root/{images,unlabelled}/NAME.png`` (square tiles only)."""
    from teachseg.data.imageio import image_shape

    for record in tiles:
        name = record.get("name") if isinstance(record, dict) else None
        if not isinstance(name, str) or not name or "/" in name or "\\" in name:
            continue
        for folder in ("images", "unlabelled"):
            path = root / folder / f"{name}.png"
            if path.is_file():
                try:
                    height, width = image_shape(path)
                except DataError:
                    return None
                return height if height == width else None
    return None


def tiles_mpp(root: Path, image_size: int) -> float | None:
    """The um/px the network sees the tiles under ``root`` at, when their manifests record one (see the
    module docstring); None when no manifest does.

    Raises:
        DataError: two manifests whose tiles the network would see at scales more than 2% apart.
    """
    scales = manifest_scales(root, image_size)
    if not scales:
        return None
    low = min(scales, key=lambda s: s.seen_mpp)
    high = max(scales, key=lambda s: s.seen_mpp)
    if high.seen_mpp > low.seen_mpp * (1 + MPP_TOLERANCE):
        raise DataError(
            f"the tile manifests disagree on the scale the network would see: {low.manifest.name} has "
            f"{low.describe()}, {high.manifest.name} has {high.describe()} (data.image_size {image_size}); "
            "a model records one scale, and predict reads slides at it",
            path=root,
            fix="cut every slide at one --mpp and --size (`teachseg data tile --mpp X --size N`), or train on "
            "the tiles of one scale in their own folder",
        )
    weights = [max(s.tiles, 1) for s in scales]
    mean = sum(s.seen_mpp * w for s, w in zip(scales, weights, strict=True)) / sum(weights)
    return round(mean, 6)


def check_data_mpp(root: Path, image_size: int, mpp: float) -> None:
    """Refuse a ``data.mpp`` that contradicts the tile manifests under ``root`` (by more than 2%).

    ``data.mpp`` is the scale the network sees, after resizing to ``image_size``; the common mistake is to copy
    the tiles' own um/px into it, which is right only when the tiles are ``image_size`` pixels a side.

    Raises:
        ConfigError: the manifests agree on a scale and ``mpp`` is not it.
    """
    try:
        seen = tiles_mpp(root, image_size)
    except DataError:
        return  # the manifests disagree among themselves: data.mpp is the user's choice of one scale
    if seen is not None and abs(mpp / seen - 1) > MPP_TOLERANCE:
        (first, *_) = manifest_scales(root, image_size)
        raise ConfigError(
            f"data.mpp = {mpp:g} um/px, but the network sees the tiles of {first.manifest.name} at {seen:g} "
            f"um/px ({first.describe()} with data.image_size {image_size}); the model would record a scale "
            "it never saw and predict would read slides at it",
            fix=f"remove data.mpp (the manifests give {seen:g}) or set it to {seen:g}; data.mpp is the um/px "
            "of the images once resized to data.image_size",
        )
