"""What ``suggest`` writes (each file atomically): ``suggestions.csv``, ``suggest.json`` and the contact sheet.

``suggestions.csv`` has one row per suggestion, best first: ``rank``, ``image`` (the file, or the slide),
``id`` (the dataset id, or the region's name), ``score`` (the value it was chosen with), then its parts:
``informativeness`` (normalised to the pool's most informative, in [0, 1]), ``uncertainty``,
``uncertain_area``, ``disagreement`` (Teacher-Student, empty with one model) and ``diversity`` (distance to
the nearest image with a mask or chosen before it, over the largest such distance); for slide regions also
``x``, ``y``, ``width``, ``height`` (level-0 pixels). ``suggest.json`` records the models, settings, seed,
pool size, what was left out and why, and the hygiene notes. ``contact_sheet.png`` shows each suggestion's
thumbnail with the members' spread (the uncertainty) in red over it, and its rank and score; the red is
scaled to the largest spread on the sheet (written under it), so a weak model's small spreads still show.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from teachseg.io import write_json, write_png, write_text

SUGGESTIONS_CSV = "suggestions.csv"
SUGGEST_JSON = "suggest.json"
CONTACT_SHEET = "contact_sheet.png"
COLUMNS = (
    "rank",
    "image",
    "id",
    "score",
    "informativeness",
    "uncertainty",
    "uncertain_area",
    "disagreement",
    "diversity",
)
REGION_COLUMNS = ("x", "y", "width", "height")
#: side of one thumbnail of the contact sheet; smallest spread the red is scaled to (so noise stays faint)
THUMB = 192
MIN_FULL_SPREAD = 0.01


@dataclass
class Suggestion:
    """One chosen candidate and the parts of its score."""

    rank: int
    id: str
    image: Path
    score: float
    informativeness: float
    uncertainty: float
    uncertain_area: float
    disagreement: float
    diversity: float
    spread: np.ndarray  #: float16 map of the members' spread (standard deviation), at most 64 px a side
    region: tuple[float, float, float, float] | None = None  #: level-0 x, y, width, height (slides)

    def row(self) -> dict[str, Any]:
        """The ``suggestions.csv`` row."""
        r: dict[str, Any] = {
            "rank": self.rank,
            "image": str(self.image),
            "id": self.id,
            "score": f"{self.score:.6f}",
            "informativeness": f"{self.informativeness:.6f}",
            "uncertainty": f"{self.uncertainty:.6f}",
            "uncertain_area": f"{self.uncertain_area:.6f}",
            "disagreement": "" if math.isnan(self.disagreement) else f"{self.disagreement:.6f}",
            "diversity": f"{self.diversity:.6f}",
        }
        if self.region is not None:
            r.update(zip(REGION_COLUMNS, (f"{v:.2f}" for v in self.region), strict=True))
        return r


def write_suggestions(path: Path, suggestions: Sequence[Suggestion]) -> Path:
    """Write ``suggestions.csv`` (region columns when any suggestion is a slide region)."""
    columns = list(COLUMNS) + (list(REGION_COLUMNS) if any(s.region for s in suggestions) else [])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for s in suggestions:
        writer.writerow(s.row())
    return write_text(path, buf.getvalue())


def read_suggestions(path: Path) -> list[dict[str, str]]:
    """The rows of a ``suggestions.csv``."""
    with Path(path).open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def write_summary(path: Path, data: dict[str, Any]) -> Path:
    """Write ``suggest.json``."""
    return write_json(path, data)


def _overlay(rgb: np.ndarray, spread: np.ndarray, full: float) -> np.ndarray:
    """``rgb`` with the spread map (any size) in red over it, opaque at ``full`` and above."""
    from PIL import Image

    h, w = rgb.shape[:2]
    f = Image.fromarray(np.asarray(spread, dtype=np.float32), mode="F")
    s = np.asarray(f.resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32)
    alpha = np.clip(s / full, 0.0, 1.0)[..., None] * 0.65
    red = np.array([255.0, 30.0, 0.0], dtype=np.float32)
    return (rgb.astype(np.float32) * (1 - alpha) + red * alpha).clip(0, 255).astype(np.uint8)


def _thumbnail(rgb: np.ndarray, side: int) -> np.ndarray:
    from PIL import Image

    h, w = rgb.shape[:2]
    k = side / max(h, w)  # small images are enlarged too, so every cell is as large
    size = (max(1, round(w * k)), max(1, round(h * k)))
    im = Image.fromarray(np.ascontiguousarray(rgb[..., :3]))
    return np.asarray(im.resize(size, Image.Resampling.LANCZOS if k < 1 else Image.Resampling.BICUBIC))


def contact_sheet(
    suggestions: Sequence[Suggestion], read: Callable[[Suggestion], np.ndarray], columns: int = 5
) -> np.ndarray:
    """One RGB image: each suggestion's thumbnail with its spread overlaid and a caption (rank, score, name)."""
    from PIL import Image, ImageDraw

    n = len(suggestions)
    cols = max(1, min(columns, n))
    rows = max(1, math.ceil(n / cols))
    caption = 28
    full = max([MIN_FULL_SPREAD, *(float(np.max(s.spread)) for s in suggestions if s.spread.size)])
    sheet = Image.new("RGB", (cols * (THUMB + 8) + 8, rows * (THUMB + caption + 8) + 22), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    draw.text(
        (8, sheet.height - 16), f"red: spread of the predictions, opaque at {full:.3f}", fill=(120, 0, 0)
    )
    for k, s in enumerate(suggestions):
        thumb = _thumbnail(read(s), THUMB)
        cell = _overlay(thumb, s.spread, full)
        x0 = 8 + (k % cols) * (THUMB + 8)
        y0 = 8 + (k // cols) * (THUMB + caption + 8)
        ox, oy = (THUMB - cell.shape[1]) // 2, (THUMB - cell.shape[0]) // 2
        sheet.paste(Image.fromarray(cell), (x0 + ox, y0 + oy))
        name = Path(s.id).name
        draw.text((x0, y0 + THUMB + 2), f"#{s.rank}  score {s.score:.3f}", fill=(0, 0, 0))
        draw.text((x0, y0 + THUMB + 14), name if len(name) <= 30 else name[:27] + "...", fill=(60, 60, 60))
    return np.asarray(sheet)


def write_contact_sheet(
    path: Path, suggestions: Sequence[Suggestion], read: Callable[[Suggestion], np.ndarray]
) -> Path:
    """Write ``contact_sheet.png`` (see :func:`contact_sheet`)."""
    return write_png(path, contact_sheet(suggestions, read))
