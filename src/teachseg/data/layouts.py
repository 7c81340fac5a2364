"""The folder layouts teachseg recognises: which one a folder has, and its samples under that layout.

The layouts (``pairs``, ``busi``, ``unlabelled``) are described in :mod:`teachseg.data.discover`, which
chooses one and calls the functions here.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

from teachseg.data.folders import (
    MASK_DIR,
    MASK_STEM,
    drop_mask_folders,
    holds_masks,
    id_prefix,
    image_files,
    image_files_by_folder,
    image_files_by_key,
    images_not_masks,
    mask_files_by_key,
    relative_inside,
    under_root,
    walk,
)
from teachseg.data.imageio import IMAGE_SUFFIXES
from teachseg.data.records import Sample
from teachseg.errors import DataError


class Layout(NamedTuple):
    """A chosen layout, why it was chosen, and the paired folders of the ``pairs`` layout."""

    name: str
    reason: str
    images_dir: Path | None = None
    masks_dir: Path | None = None


def detect_layout(root: Path) -> Layout:
    """The layout for ``layout="auto"``: images/ + masks/, else X_mask files, else a folder pair."""
    if (root / "images").is_dir() and (root / "masks").is_dir():
        return Layout("pairs", "images/ and masks/ folders", root / "images", root / "masks")
    busi_folders = set()
    for folder, names in image_files_by_folder(root).items():
        stems = {Path(n).stem for n in names}
        for stem in stems:
            m = MASK_STEM.match(stem)
            if m and m.group(1) in stems:
                busi_folders.add(folder)
                break
    if busi_folders:
        where = ", ".join(sorted(f"{f.as_posix()}/" for f in busi_folders if f != Path(".")))
        return Layout("busi", f"X_mask files beside their images, in {where or 'the dataset folder'}")
    paired = find_folder_pair(root)
    if paired is not None:
        return paired
    return Layout("unlabelled", "no mask folder or X_mask file pairs with the images")


def find_folder_pair(root: Path) -> Layout | None:
    """The one (image folder, mask folder) pair among ``root``'s folders whose file names match."""
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    mask_dirs = [p for p in folders if MASK_DIR.match(p.name) or holds_masks(image_files(p))]
    image_keys = {p: set(image_files_by_key(p)) for p in folders if p not in mask_dirs}
    found = []
    for masks_dir in mask_dirs:
        mask_keys = set(mask_files_by_key(masks_dir))
        for images_dir, keys in image_keys.items():
            n = len(mask_keys & keys)
            if n and 2 * n >= len(mask_keys):  # most masks name an image of this folder
                found.append((images_dir, masks_dir, n, len(mask_keys)))
    if not found:
        return None
    if len(found) > 1:
        pairs = "; ".join(f"{i.name}/ + {m.name}/" for i, m, _, _ in found)
        raise DataError(
            f"several image and mask folders match by name ({pairs}), so teachseg will not guess",
            path=root,
            fix="set data.images_dir and data.masks_dir (teachseg data check --images DIR --masks DIR)",
        )
    images_dir, masks_dir, n, total = found[0]
    why = "named like masks" if MASK_DIR.match(masks_dir.name) else "images of two values or fewer"
    reason = f"{images_dir.name}/ + {masks_dir.name}/ ({why}): {n} of {total} masks match an image by name"
    return Layout("pairs", reason, images_dir, masks_dir)


def explicit_folders(root: Path, images_dir: Path | None, masks_dir: Path | None) -> Layout:
    """The ``pairs`` layout of folders set by the user, checked to exist, differ and share image names."""
    if images_dir is None or masks_dir is None:
        given = f"images {images_dir}" if images_dir is not None else f"masks {masks_dir}"
        raise DataError(
            f"only one of the image and mask folders is set ({given})",
            path=root,
            fix="set data.images_dir and data.masks_dir together (--images and --masks)",
        )
    images, masks = under_root(root, images_dir), under_root(root, masks_dir)
    both = f"images folder {images}, masks folder {masks}"
    fix = "check data.images_dir and data.masks_dir (--images, --masks); relative paths are inside data.root"
    for what, folder in (("images", images), ("masks", masks)):
        if not folder.is_dir():
            raise DataError(f"{what} folder not found ({both})", fix=fix)
    if images.resolve() == masks.resolve():
        raise DataError(
            f"the images and masks folders are one folder ({both})",
            fix="for X + X_mask files side by side leave data.images_dir and data.masks_dir unset (BUSI layout); "
            + fix,
        )
    image_keys, mask_keys = image_files_by_key(images, masks), mask_files_by_key(masks)
    n = len(set(image_keys) & set(mask_keys))
    if not n:
        example = ""
        if image_keys and mask_keys:
            example = f"; e.g. image {min(image_keys)!r}, mask {min(mask_keys)!r}"
        raise DataError(
            f"no image has a mask of the same name ({len(image_keys)} images in {images}, "
            f"{len(mask_keys)} masks in {masks}{example})",
            fix="a mask must have its image's name (optionally + _mask), any extension; " + fix,
        )
    reason = f"folders set: images {images}, masks {masks}; {n} of {len(mask_keys)} masks match an image"
    return Layout("pairs", reason, images, masks)


def pairs_samples(
    root: Path, images_dir: Path, masks_dir: Path
) -> tuple[list[Sample], list[str], list[Path]]:
    """Samples, problems, and the ``*_mask`` files found among the images (never images themselves)."""
    if not images_dir.is_dir():
        raise DataError(
            f"layout 'pairs' needs an images folder ({images_dir.name}/)",
            path=root,
            fix="put images in images/ and masks in masks/, or use --layout auto",
        )
    if not masks_dir.is_dir():
        raise DataError(
            f"layout 'pairs' needs a masks folder ({masks_dir.name}/)",
            path=root,
            fix="put masks in masks/ (same stem as the image, optionally with _mask), or use --layout unlabelled",
        )
    problems: list[str] = []
    masks_by_key = mask_files_by_key(masks_dir)
    images_by_key = image_files_by_key(images_dir, masks_dir)
    prefix = id_prefix(root, images_dir)

    samples: list[Sample] = []
    for key, rels in sorted(images_by_key.items()):
        if len(rels) > 1:
            names = ", ".join(str(images_dir / r) for r in rels)
            problems.append(
                f"{images_dir / rels[0]}: several images share the name {key!r} ({names}); rename all but one"
            )
        masks = tuple(sorted(masks_by_key.get(key, ())))
        for rel in rels:
            samples.append(Sample(id=(prefix / rel).as_posix(), image=images_dir / rel, masks=masks))
    rel_images = prefix.as_posix()
    for key, paths in sorted(masks_by_key.items()):
        if key not in images_by_key:
            for p in paths:
                problems.append(
                    f"{p}: mask without an image (no {rel_images}/{key}.*); add the image or remove the mask"
                )

    mask_like = [images_dir / r for r in walk(images_dir, IMAGE_SUFFIXES) if MASK_STEM.match(r.stem)]
    extra_dir = root / "unlabelled"
    inside = any(relative_inside(extra_dir, folder) is not None for folder in (images_dir, masks_dir))
    if extra_dir.is_dir() and not inside:
        # Masks by name only: blank tiles in an unlabelled pool are images, not masks.
        pool, named_masks = images_not_masks(extra_dir, by_content=False)
        for rel in pool:
            samples.append(Sample(id=(id_prefix(root, extra_dir) / rel).as_posix(), image=extra_dir / rel))
        mask_like.extend(extra_dir / r for r in named_masks)
    return samples, problems, mask_like


def busi_samples(root: Path) -> tuple[list[Sample], list[str]]:
    """Samples and problems of a BUSI folder: ``X.png`` + ``X_mask*.png``, the class folder as class."""
    problems: list[str] = []
    samples: list[Sample] = []
    found_mask = False
    for folder, names in sorted(image_files_by_folder(root).items()):
        by_stem: dict[str, list[str]] = defaultdict(list)
        for name in names:
            by_stem[Path(name).stem].append(name)
        masks_of: dict[str, list[Path]] = defaultdict(list)
        image_names: list[str] = []
        for stem, files in sorted(by_stem.items()):
            m = MASK_STEM.match(stem)
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


def unlabelled_samples(root: Path) -> tuple[list[Sample], list[Path]]:
    """Every image of ``root`` as an unlabelled sample, and the files that look like masks."""
    images, masks = images_not_masks(root)
    return [Sample(id=rel.as_posix(), image=root / rel) for rel in images], [root / r for r in masks]


def extra_unlabelled_samples(
    folder: Path, ids: set[str], seen_files: set[Path], mask_files: set[Path]
) -> tuple[list[Sample], int, list[Path]]:
    """Samples of an ``unlabelled_dirs`` folder, mask files skipped, and files that look like masks."""
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
    images, named_masks = images_not_masks(folder, by_content=False)
    kept: list[Path] = []
    for rel in images:
        resolved = (folder / rel).resolve()
        if resolved in mask_files or any(p in mask_files for p in resolved.parents):
            named_masks.append(rel)  # a mask (or inside the mask folder) of the dataset itself
        else:
            kept.append(rel)
    kept, looks = drop_mask_folders(folder, kept)
    out: list[Sample] = []
    for rel in kept:
        path = folder / rel
        resolved = path.resolve()
        if resolved in seen_files:  # the same file listed twice (e.g. root/unlabelled again)
            continue
        seen_files.add(resolved)
        sample = Sample(id=f"{prefix}/{rel.as_posix()}", image=path)
        ids.add(sample.id)
        out.append(sample)
    if not kept and not named_masks and not looks:
        raise DataError(
            "no images in this unlabelled folder",
            path=folder,
            fix=f"add images with one of the suffixes {', '.join(sorted(IMAGE_SUFFIXES))} or remove the folder",
        )
    if not kept:
        raise DataError(
            f"this unlabelled folder holds only masks ({len(named_masks) + len(looks)} files), no images",
            path=folder,
            fix="point data.unlabelled_dirs at a folder of images, not of masks",
        )
    return out, len(named_masks), [folder / r for r in looks]
