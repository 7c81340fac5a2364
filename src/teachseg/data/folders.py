"""Walk dataset folders, key images and masks by name, and tell mask files from images.

A file is a mask, never an image, when its stem ends in ``_mask`` (or ``_mask_N``), when it lies in a folder
named like masks (``masks``, ``labels``, ``gt``, ``*_masks``, ...), or, where content is probed, when the
sampled images of its folder hold two values or fewer.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from teachseg.data.imageio import IMAGE_SUFFIXES, read_raw
from teachseg.data.masks import MASK_SUFFIXES
from teachseg.errors import DataError

# "X_mask", "X_mask_1", "X_mask_12" -> group 1 is "X"
MASK_STEM = re.compile(r"^(.*)_mask(?:_\d+)?$")
# Folder names that hold masks: "masks", "Labels", "GT", "train_masks", "ground_truth", "seg", ...
MASK_DIR = re.compile(
    r"^(?:.*[_\-. ])?(?:masks?|labels?|gts?|ground[_\- ]?truths?|annotations?|segmentations?|segs?)$",
    re.IGNORECASE,
)
#: Images decoded per folder to decide whether it holds masks (two values or fewer in every one).
MASK_PROBE_FILES = 8


def walk(folder: Path, suffixes: set[str]) -> Iterator[Path]:
    """Files under ``folder`` with one of ``suffixes``, relative to it, sorted; hidden entries skipped."""
    found = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):  # also .teachseg* caches and .tmp writes
            continue
        if path.suffix.lower() in suffixes and path.is_file():
            found.append(rel)
    yield from sorted(found, key=lambda p: p.as_posix())


def image_files_by_folder(root: Path) -> dict[Path, list[str]]:
    """Relative folder -> names of image files directly in it (hidden entries skipped)."""
    out: dict[Path, list[str]] = defaultdict(list)
    for rel in walk(root, IMAGE_SUFFIXES):
        out[rel.parent].append(rel.name)
    return dict(out)


def image_files(folder: Path) -> list[Path]:
    """Image files under ``folder`` (full paths), as :func:`walk` finds them."""
    return [folder / rel for rel in walk(folder, IMAGE_SUFFIXES)]


def mask_files_by_key(masks_dir: Path) -> dict[str, list[Path]]:
    """Image key (relative path without suffix and ``_mask``/``_mask_N``) -> mask files."""
    out: dict[str, list[Path]] = defaultdict(list)
    for rel in walk(masks_dir, MASK_SUFFIXES):
        m = MASK_STEM.match(rel.stem)
        key = (rel.parent / (m.group(1) if m else rel.stem)).as_posix()
        out[key].append(masks_dir / rel)
    return dict(out)


def image_files_by_key(images_dir: Path, masks_dir: Path | None = None) -> dict[str, list[Path]]:
    """Relative path without suffix -> image files (relative to ``images_dir``).

    ``*_mask`` files and files inside ``masks_dir`` (when it is inside ``images_dir``) are left out.
    """
    inner = relative_inside(masks_dir, images_dir) if masks_dir is not None else None
    out: dict[str, list[Path]] = defaultdict(list)
    for rel in walk(images_dir, IMAGE_SUFFIXES):
        if MASK_STEM.match(rel.stem) or (inner is not None and rel.is_relative_to(inner)):
            continue
        out[rel.with_suffix("").as_posix()].append(rel)
    return dict(out)


def relative_inside(path: Path, folder: Path) -> Path | None:
    """``path`` relative to ``folder`` when it lies inside it, else ``None``."""
    try:
        return path.resolve().relative_to(folder.resolve())
    except ValueError:
        return None


def id_prefix(root: Path, folder: Path) -> Path:
    """``folder`` relative to ``root`` for sample ids; its name alone when it lies outside ``root``."""
    rel = relative_inside(folder, root)
    return Path(folder.name) if rel is None else rel


def under_root(root: Path, path: Path) -> Path:
    """``path`` inside ``root`` when relative and there (or nowhere else), else as given."""
    path = Path(path)
    if path.is_absolute() or (root / path).exists() or not path.exists():
        return root / path  # an absolute path stays as is
    return path


def images_not_masks(folder: Path, *, by_content: bool = True) -> tuple[list[Path], list[Path]]:
    """Image files under ``folder`` (relative) split into images and masks.

    Masks by name: ``*_mask``/``*_mask_N`` files and files inside a folder named like masks; with
    ``by_content``, also every file of a folder whose sampled images hold two values or fewer.
    """
    images: list[Path] = []
    masks: list[Path] = []
    for rel in walk(folder, IMAGE_SUFFIXES):
        named = MASK_STEM.match(rel.stem) or any(MASK_DIR.match(part) for part in rel.parts[:-1])
        (masks if named else images).append(rel)
    if by_content:
        images, looks = drop_mask_folders(folder, images)
        masks.extend(looks)
    return images, sorted(masks)


def drop_mask_folders(folder: Path, rels: list[Path]) -> tuple[list[Path], list[Path]]:
    """``rels`` split into those outside and those inside sub-folders that hold masks (by content)."""
    by_parent: dict[Path, list[Path]] = defaultdict(list)
    for rel in rels:
        by_parent[rel.parent].append(rel)
    kept: list[Path] = []
    masks: list[Path] = []
    for _parent, files in sorted(by_parent.items()):
        (masks if holds_masks([folder / r for r in files]) else kept).extend(files)
    return kept, masks


def holds_masks(files: list[Path]) -> bool:
    """Whether every probed file (up to :data:`MASK_PROBE_FILES`, evenly spaced) looks like a mask.

    A mask has two values or fewer, one of them 0 (background) unless they are 1/255 (all foreground).
    """
    if not files:
        return False
    step = max(1, len(files) // MASK_PROBE_FILES)
    return all(_few_values(path) for path in files[::step][:MASK_PROBE_FILES])


def _few_values(path: Path) -> bool:
    try:
        array = read_raw(path, palette_indices=True)
    except DataError:
        return False  # unreadable: data check reports it as an image problem
    flat = array.reshape(-1)
    # A photograph shows many values within its first pixels; only then pay for the whole array.
    if np.unique(flat[:4096]).size > 2:
        return False
    values = np.unique(flat)
    # A mask holds background 0 and/or one foreground value (1, 255, ...); a flat grey image is no mask.
    return bool(values.size <= 2 and (values.min() == 0 or set(values.tolist()) <= {1, 255, 65535}))
