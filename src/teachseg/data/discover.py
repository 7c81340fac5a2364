"""Find the images and masks of a dataset folder, whatever its layout.

Three layouts are recognised automatically (``layout="auto"``) and each can be forced:

``pairs``
    ``images/`` + ``masks/`` with matching stems; a mask stem may end in ``_mask`` (or ``_mask_N`` for
    extra masks), masks may be images or MATLAB ``.mat`` files. Images without a mask are unlabelled, as
    are the images of an optional ``unlabelled/`` folder beside ``images/``.
``busi``
    BUSI's published layout: ``X.png`` beside ``X_mask.png`` (+ optional ``X_mask_1.png`` ...), in class
    folders (``benign/``, ``malignant/``, ``normal/``: the folder name is the class) or directly in the
    root (no class).
``unlabelled``
    any folder of images without masks: every image is unlabelled.

Example:
    >>> d = discover(Path("../shared/data/busi"))
    >>> d.layout, len(d.labelled)
    ('busi', 612)
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from teachseg.data.imageio import IMAGE_SUFFIXES, MASK_SUFFIXES
from teachseg.errors import DataError

LAYOUTS = ("auto", "pairs", "busi", "unlabelled")

# "X_mask", "X_mask_1", "X_mask_12" -> group 1 is "X"
_MASK_STEM = re.compile(r"^(.*)_mask(?:_\d+)?$")


@dataclass(frozen=True)
class Sample:
    """One image and the mask files that label it.

    Attributes:
        id: image path relative to the dataset root, POSIX style; unique within a discovery.
        image: the image file.
        masks: mask files, OR-merged when there are several; empty for an unlabelled image.
        cls: class (the BUSI class folder), else ``None``.
    """

    id: str
    image: Path
    masks: tuple[Path, ...] = ()
    cls: str | None = None

    @property
    def labelled(self) -> bool:
        return bool(self.masks)


@dataclass
class Discovery:
    """The result of :func:`discover`: the samples of a dataset and the problems met on the way."""

    root: Path
    layout: str
    samples: list[Sample]
    problems: list[str] = field(default_factory=list)

    @property
    def labelled(self) -> list[Sample]:
        return [s for s in self.samples if s.labelled]

    @property
    def unlabelled(self) -> list[Sample]:
        return [s for s in self.samples if not s.labelled]

    def by_id(self) -> dict[str, Sample]:
        return {s.id: s for s in self.samples}


def discover(root: Path, layout: str = "auto", unlabelled_dirs: Sequence[Path] = ()) -> Discovery:
    """Find the samples of the dataset in ``root``.

    Args:
        root: dataset folder.
        layout: ``"auto"``, ``"pairs"``, ``"busi"`` or ``"unlabelled"``.
        unlabelled_dirs: extra folders whose images are added as unlabelled samples, with ids
            ``"<folder name>/<path inside the folder>"``.

    Raises:
        DataError: missing folder, unknown layout, or no images at all.
    """
    root = Path(root)
    if layout not in LAYOUTS:
        raise DataError(f"unknown layout {layout!r}", fix=f"use one of: {', '.join(LAYOUTS)}")
    if not root.exists():
        raise DataError(
            "dataset folder not found", path=root, fix="check the path (data.root) and that it is mounted"
        )
    if not root.is_dir():
        raise DataError(
            "dataset path is not a folder", path=root, fix="point data.root at the dataset folder"
        )

    chosen = _detect_layout(root) if layout == "auto" else layout
    if chosen == "pairs":
        samples, problems = _discover_pairs(root)
    elif chosen == "busi":
        samples, problems = _discover_busi(root)
    else:
        samples, problems = _discover_unlabelled(root)
    if not samples:
        raise DataError(
            f"no images found (layout {chosen!r})",
            path=root,
            fix=f"put images with one of the suffixes {', '.join(sorted(IMAGE_SUFFIXES))} in this folder",
        )

    seen_files = {s.image.resolve() for s in samples}
    ids = {s.id for s in samples}
    for folder in unlabelled_dirs:
        extra = _discover_extra_unlabelled(Path(folder), ids, seen_files)
        samples.extend(extra)
    samples.sort(key=lambda s: s.id)
    return Discovery(root=root, layout=chosen, samples=samples, problems=sorted(problems))


# ---------------------------------------------------------------------------------------------- layouts


def _detect_layout(root: Path) -> str:
    if (root / "images").is_dir() and (root / "masks").is_dir():
        return "pairs"
    for names in _image_files_by_folder(root).values():
        stems = {Path(n).stem for n in names}
        for stem in stems:
            m = _MASK_STEM.match(stem)
            if m and m.group(1) in stems:
                return "busi"
    return "unlabelled"


def _discover_pairs(root: Path) -> tuple[list[Sample], list[str]]:
    images_dir, masks_dir = root / "images", root / "masks"
    if not images_dir.is_dir():
        raise DataError(
            "layout 'pairs' needs an images/ folder",
            path=root,
            fix="put images in images/ and masks in masks/, or use --layout auto",
        )
    if not masks_dir.is_dir():
        raise DataError(
            "layout 'pairs' needs a masks/ folder",
            path=root,
            fix="put masks in masks/ (same stem as the image, optionally with _mask), or use --layout unlabelled",
        )
    problems: list[str] = []

    masks_by_key: dict[str, list[Path]] = defaultdict(list)
    for rel in _walk(masks_dir, MASK_SUFFIXES):
        stem = rel.stem
        m = _MASK_STEM.match(stem)
        key = (rel.parent / (m.group(1) if m else stem)).as_posix()
        masks_by_key[key].append(masks_dir / rel)

    images_by_key: dict[str, list[Path]] = defaultdict(list)
    for rel in _walk(images_dir, IMAGE_SUFFIXES):
        images_by_key[rel.with_suffix("").as_posix()].append(rel)

    samples: list[Sample] = []
    for key, rels in sorted(images_by_key.items()):
        if len(rels) > 1:
            names = ", ".join(str(images_dir / r) for r in rels)
            problems.append(
                f"{images_dir / rels[0]}: several images share the name {key!r} ({names}); rename all but one"
            )
        masks = tuple(sorted(masks_by_key.get(key, ())))
        for rel in rels:
            samples.append(Sample(id=(Path("images") / rel).as_posix(), image=images_dir / rel, masks=masks))
    for key, paths in sorted(masks_by_key.items()):
        if key not in images_by_key:
            for p in paths:
                problems.append(
                    f"{p}: mask without an image (no images/{key}.*); add the image or remove the mask"
                )

    extra_dir = root / "unlabelled"
    if extra_dir.is_dir():
        for rel in _walk(extra_dir, IMAGE_SUFFIXES):
            samples.append(Sample(id=(Path("unlabelled") / rel).as_posix(), image=extra_dir / rel))
    return samples, problems


def _discover_busi(root: Path) -> tuple[list[Sample], list[str]]:
    problems: list[str] = []
    samples: list[Sample] = []
    found_mask = False
    for folder, names in sorted(_image_files_by_folder(root).items()):
        by_stem: dict[str, list[str]] = defaultdict(list)
        for name in names:
            by_stem[Path(name).stem].append(name)
        masks_of: dict[str, list[Path]] = defaultdict(list)
        image_names: list[str] = []
        for stem, files in sorted(by_stem.items()):
            m = _MASK_STEM.match(stem)
            if m:  # a *_mask file without its image is an orphan mask (reported below), not an image
                masks_of[m.group(1)].extend(root / folder / f for f in files)
            else:
                image_names.extend(files)
        found_mask = found_mask or bool(masks_of)
        # The folder is the class (BUSI); a folder without any mask (e.g. extra unlabelled images) is not.
        cls = folder.name if folder != Path(".") and masks_of else None
        image_stems = {Path(n).stem for n in image_names}
        for name in sorted(image_names):
            stem = Path(name).stem
            rel = folder / name
            masks = tuple(sorted(masks_of.get(stem, ())))
            samples.append(Sample(id=rel.as_posix(), image=root / rel, masks=masks, cls=cls))
        for base, paths in sorted(masks_of.items()):
            if base not in image_stems:
                for p in sorted(paths):
                    problems.append(
                        f"{p}: mask without an image (no {base}.* beside it); add the image or remove the mask"
                    )
    if samples and not found_mask:
        raise DataError(
            "layout 'busi' found no X_mask.* files beside the images",
            path=root,
            fix="name masks like 'X_mask.png' next to 'X.png', or use --layout auto",
        )
    return samples, problems


def _discover_unlabelled(root: Path) -> tuple[list[Sample], list[str]]:
    samples = []
    for rel in _walk(root, IMAGE_SUFFIXES):
        if rel.parts and rel.parts[0] == "masks":
            continue
        samples.append(Sample(id=rel.as_posix(), image=root / rel))
    return samples, []


def _discover_extra_unlabelled(folder: Path, ids: set[str], seen_files: set[Path]) -> list[Sample]:
    if not folder.is_dir():
        raise DataError(
            "unlabelled image folder not found",
            path=folder,
            fix="check data.unlabelled_dirs (each entry must be an existing folder of images)",
        )
    prefix = folder.name or "unlabelled"
    n = 1
    while any(i.startswith(prefix + "/") for i in ids):
        n += 1
        prefix = f"{folder.name or 'unlabelled'}-{n}"
    out: list[Sample] = []
    for rel in _walk(folder, IMAGE_SUFFIXES):
        path = folder / rel
        resolved = path.resolve()
        if resolved in seen_files:  # the same file listed twice (e.g. root/unlabelled again)
            continue
        seen_files.add(resolved)
        sample = Sample(id=f"{prefix}/{rel.as_posix()}", image=path)
        ids.add(sample.id)
        out.append(sample)
    if not out and not any(True for _ in _walk(folder, IMAGE_SUFFIXES)):
        raise DataError(
            "no images in this unlabelled folder",
            path=folder,
            fix=f"add images with one of the suffixes {', '.join(sorted(IMAGE_SUFFIXES))} or remove the folder",
        )
    return out


# ---------------------------------------------------------------------------------------------- walking


def _walk(folder: Path, suffixes: set[str]) -> Iterator[Path]:
    """Files under ``folder`` with one of ``suffixes``, relative to it, sorted; hidden entries skipped."""
    found = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):  # also .teachseg* caches and .tmp writes
            continue
        if path.suffix.lower() in suffixes and path.is_file():
            found.append(rel)
    yield from sorted(found, key=lambda p: p.as_posix())


def _image_files_by_folder(root: Path) -> dict[Path, list[str]]:
    """Relative folder -> names of image files directly in it (hidden entries skipped)."""
    out: dict[Path, list[str]] = defaultdict(list)
    for rel in _walk(root, IMAGE_SUFFIXES):
        out[rel.parent].append(rel.name)
    return dict(out)


# -------------------------------------------------------------------------------------------- checking


def check_dataset(
    d: Discovery, mat_variable: str | None = None, *, decode_images: bool = False
) -> dict[str, Any]:
    """Read every image header (or whole image) and every mask, and summarise the dataset.

    Args:
        d: a discovery.
        mat_variable: variable holding the mask in ``.mat`` files (``None``: automatic choice).
        decode_images: decode every image fully (finds truncated files; slower) instead of headers only.

    Returns:
        A JSON-ready dict: ``layout``, ``root``, ``samples``, ``pairs``, ``unlabelled``, ``extra_masks``
        (images with more than one mask file), ``classes`` (class -> number of images), ``image_size``
        (``height``/``width`` -> ``min``/``median``/``max``), ``mask_coverage`` (``mean`` foreground share
        over readable masks, ``empty`` images whose mask is all background) and ``problems`` (one line
        each, naming the file).
    """
    import numpy as np

    from teachseg.data.imageio import image_shape, read_image, read_mask

    problems = list(d.problems)
    heights: list[int] = []
    widths: list[int] = []
    coverage: list[float] = []
    empty = 0
    classes: dict[str, int] = defaultdict(int)
    for sample in d.samples:
        if sample.cls is not None:
            classes[sample.cls] += 1
        try:
            if decode_images:
                h, w = read_image(sample.image).shape[:2]
            else:
                h, w = image_shape(sample.image)
        except DataError as exc:
            problems.append(str(exc))
            continue
        heights.append(h)
        widths.append(w)
        if not sample.masks:
            continue
        try:
            mask = read_mask(sample.masks, mat_variable=mat_variable, expected_shape=(h, w))
        except DataError as exc:
            problems.append(str(exc))
            continue
        share = float(mask.mean()) if mask.size else 0.0
        coverage.append(share)
        empty += share == 0.0

    def stats(values: list[int]) -> dict[str, int] | None:
        if not values:
            return None
        return {"min": int(min(values)), "median": int(np.median(values)), "max": int(max(values))}

    return {
        "root": str(d.root),
        "layout": d.layout,
        "samples": len(d.samples),
        "pairs": len(d.labelled),
        "unlabelled": len(d.unlabelled),
        "extra_masks": sum(len(s.masks) > 1 for s in d.samples),
        "classes": dict(sorted(classes.items())),
        "image_size": {"height": stats(heights), "width": stats(widths)},
        "mask_coverage": {
            "mean": float(np.mean(coverage)) if coverage else None,
            "empty": int(empty),
            "checked": len(coverage),
        },
        "problems": problems,
    }
