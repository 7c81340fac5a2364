"""Find the images and masks of a dataset folder, whatever its layout.

Three layouts are recognised automatically (``layout="auto"``) and each can be forced:

``pairs``
    a folder of images + a folder of masks with matching stems: ``images/`` + ``masks/``, or any one
    image folder and one mask folder whose names match (``imgs/`` + ``labels/``, ``Images/`` + ``GT/``,
    ``train_images/`` + ``train_masks/``, ...; given explicitly with ``images_dir`` / ``masks_dir``). A mask
    stem may end in ``_mask`` (or ``_mask_N`` for extra masks), its extension may differ from the image's,
    masks may be images or MATLAB ``.mat`` files. Images without a mask are unlabelled, as are the images
    of an optional ``unlabelled/`` folder beside the image folder.
``busi``
    BUSI's published layout: ``X.png`` beside ``X_mask.png`` (+ optional ``X_mask_1.png`` ...), in class
    folders (``benign/``, ``malignant/``, ``normal/``: the folder name is the class) or directly in the
    root (no class).
``unlabelled``
    any folder of images without masks: every image is unlabelled.

Masks are never images: ``*_mask`` files, files in a folder named like masks (``masks``, ``labels``, ``gt``,
``*_masks``, ...) and folders whose images hold two values or fewer are kept out of the unlabelled pool, in
the dataset and in ``unlabelled_dirs`` alike; those that nothing pairs with an image are listed in
:attr:`Discovery.mask_like` (``teachseg data check``: "N files look like masks; set data.masks_dir").

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
from typing import Any, NamedTuple

from teachseg.data.imageio import IMAGE_SUFFIXES, MASK_SUFFIXES
from teachseg.errors import DataError

LAYOUTS = ("auto", "pairs", "busi", "unlabelled")

# "X_mask", "X_mask_1", "X_mask_12" -> group 1 is "X"
_MASK_STEM = re.compile(r"^(.*)_mask(?:_\d+)?$")
# Folder names that hold masks: "masks", "Labels", "GT", "train_masks", "ground_truth", "seg", ...
_MASK_DIR = re.compile(
    r"^(?:.*[_\-. ])?(?:masks?|labels?|gts?|ground[_\- ]?truths?|annotations?|segmentations?|segs?)$",
    re.IGNORECASE,
)
#: Images decoded per folder to decide whether it holds masks (two values or fewer in every one).
MASK_PROBE_FILES = 8


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
    """The result of :func:`discover`: the samples of a dataset and the problems met on the way.

    Attributes:
        reason: why this layout was chosen, in words.
        images_dir, masks_dir: the paired folders of the ``pairs`` layout, else ``None``.
        mask_like: files that look like masks (by name, folder or content) but label no image; they are
            never samples. A non-empty list is a risk: the masks are likely in a folder nobody paired.
        masks_skipped: mask files kept out of ``unlabelled_dirs`` (they are masks, not images).
    """

    root: Path
    layout: str
    samples: list[Sample]
    problems: list[str] = field(default_factory=list)
    reason: str = ""
    images_dir: Path | None = None
    masks_dir: Path | None = None
    mask_like: list[Path] = field(default_factory=list)
    masks_skipped: int = 0

    @property
    def labelled(self) -> list[Sample]:
        return [s for s in self.samples if s.labelled]

    @property
    def unlabelled(self) -> list[Sample]:
        return [s for s in self.samples if not s.labelled]

    def by_id(self) -> dict[str, Sample]:
        return {s.id: s for s in self.samples}


class _Layout(NamedTuple):
    name: str
    reason: str
    images_dir: Path | None = None
    masks_dir: Path | None = None


def discover(
    root: Path,
    layout: str = "auto",
    unlabelled_dirs: Sequence[Path] = (),
    *,
    images_dir: Path | None = None,
    masks_dir: Path | None = None,
) -> Discovery:
    """Find the samples of the dataset in ``root``.

    Args:
        root: dataset folder.
        layout: ``"auto"``, ``"pairs"``, ``"busi"`` or ``"unlabelled"``.
        unlabelled_dirs: extra folders whose images are added as unlabelled samples, with ids
            ``"<folder name>/<path inside the folder>"``; mask files in them are skipped.
        images_dir, masks_dir: the image and mask folders of a ``pairs`` dataset with any folder names
            (set both or neither); relative paths are inside ``root`` (else the working directory).

    Raises:
        DataError: missing folder, unknown layout, explicit folders that are missing or share no stem, or
            no images at all.
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

    if images_dir is not None or masks_dir is not None:
        if layout not in ("auto", "pairs"):
            raise DataError(
                f"data.images_dir / data.masks_dir pair folders, but the layout is {layout!r}",
                path=root,
                fix="set data.layout to auto or pairs, or remove data.images_dir and data.masks_dir",
            )
        chosen = _explicit_folders(root, images_dir, masks_dir)
    elif layout == "auto":
        chosen = _detect_layout(root)
    elif layout == "pairs":
        chosen = _Layout("pairs", "layout 'pairs' set", root / "images", root / "masks")
    else:
        chosen = _Layout(layout, f"layout {layout!r} set")

    mask_like: list[Path] = []
    if chosen.name == "pairs":
        assert chosen.images_dir is not None and chosen.masks_dir is not None
        samples, problems, mask_like = _discover_pairs(root, chosen.images_dir, chosen.masks_dir)
    elif chosen.name == "busi":
        samples, problems = _discover_busi(root)
    else:
        samples, mask_like = _discover_unlabelled(root)
        problems = []
    if not samples:
        if mask_like:
            raise DataError(
                f"no images found, only {len(mask_like)} files that look like masks (two values or fewer)",
                path=root,
                fix="set data.images_dir and data.masks_dir (teachseg data check --images DIR --masks DIR)",
            )
        raise DataError(
            f"no images found (layout {chosen.name!r})",
            path=root,
            fix=f"put images with one of the suffixes {', '.join(sorted(IMAGE_SUFFIXES))} in this folder",
        )

    seen_files = {s.image.resolve() for s in samples}
    mask_files = {p.resolve() for s in samples for p in s.masks}
    if chosen.masks_dir is not None:
        mask_files.add(chosen.masks_dir.resolve())
    ids = {s.id for s in samples}
    skipped = 0
    for folder in unlabelled_dirs:
        extra, n_masks, looks = _discover_extra_unlabelled(Path(folder), ids, seen_files, mask_files)
        samples.extend(extra)
        skipped += n_masks
        mask_like.extend(looks)
    samples.sort(key=lambda s: s.id)
    return Discovery(
        root=root,
        layout=chosen.name,
        samples=samples,
        problems=sorted(problems),
        reason=chosen.reason,
        images_dir=chosen.images_dir,
        masks_dir=chosen.masks_dir,
        mask_like=sorted(mask_like),
        masks_skipped=skipped,
    )


# ---------------------------------------------------------------------------------------------- layouts


def _detect_layout(root: Path) -> _Layout:
    if (root / "images").is_dir() and (root / "masks").is_dir():
        return _Layout("pairs", "images/ and masks/ folders", root / "images", root / "masks")
    busi_folders = set()
    for folder, names in _image_files_by_folder(root).items():
        stems = {Path(n).stem for n in names}
        for stem in stems:
            m = _MASK_STEM.match(stem)
            if m and m.group(1) in stems:
                busi_folders.add(folder)
                break
    if busi_folders:
        where = ", ".join(sorted(f"{f.as_posix()}/" for f in busi_folders if f != Path(".")))
        return _Layout("busi", f"X_mask files beside their images, in {where or 'the dataset folder'}")
    paired = _find_folder_pair(root)
    if paired is not None:
        return paired
    return _Layout("unlabelled", "no mask folder or X_mask file pairs with the images")


def _find_folder_pair(root: Path) -> _Layout | None:
    """The one (image folder, mask folder) pair among ``root``'s folders whose file names match."""
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    mask_dirs = [p for p in folders if _MASK_DIR.match(p.name) or _holds_masks(_files(p))]
    image_keys = {p: set(_image_keys(p)) for p in folders if p not in mask_dirs}
    found = []
    for masks_dir in mask_dirs:
        mask_keys = set(_mask_keys(masks_dir))
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
    why = "named like masks" if _MASK_DIR.match(masks_dir.name) else "images of two values or fewer"
    reason = f"{images_dir.name}/ + {masks_dir.name}/ ({why}): {n} of {total} masks match an image by name"
    return _Layout("pairs", reason, images_dir, masks_dir)


def _explicit_folders(root: Path, images_dir: Path | None, masks_dir: Path | None) -> _Layout:
    if images_dir is None or masks_dir is None:
        given = f"images {images_dir}" if images_dir is not None else f"masks {masks_dir}"
        raise DataError(
            f"only one of the image and mask folders is set ({given})",
            path=root,
            fix="set data.images_dir and data.masks_dir together (--images and --masks)",
        )
    images, masks = _inside(root, images_dir), _inside(root, masks_dir)
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
    image_keys, mask_keys = _image_keys(images, masks), _mask_keys(masks)
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
    return _Layout("pairs", reason, images, masks)


def _inside(root: Path, path: Path) -> Path:
    """``path`` inside ``root`` when relative and there (or nowhere else), else as given."""
    path = Path(path)
    if path.is_absolute() or (root / path).exists() or not path.exists():
        return root / path  # an absolute path stays as is
    return path


def _files(folder: Path) -> list[Path]:
    return [folder / rel for rel in _walk(folder, IMAGE_SUFFIXES)]


def _mask_keys(masks_dir: Path) -> dict[str, list[Path]]:
    """Image key (relative path without suffix and ``_mask``/``_mask_N``) -> mask files."""
    out: dict[str, list[Path]] = defaultdict(list)
    for rel in _walk(masks_dir, MASK_SUFFIXES):
        m = _MASK_STEM.match(rel.stem)
        key = (rel.parent / (m.group(1) if m else rel.stem)).as_posix()
        out[key].append(masks_dir / rel)
    return dict(out)


def _image_keys(images_dir: Path, masks_dir: Path | None = None) -> dict[str, list[Path]]:
    """Relative path without suffix -> image files (relative to ``images_dir``).

    ``*_mask`` files and files inside ``masks_dir`` (when it is inside ``images_dir``) are left out.
    """
    inner = _relative_inside(masks_dir, images_dir) if masks_dir is not None else None
    out: dict[str, list[Path]] = defaultdict(list)
    for rel in _walk(images_dir, IMAGE_SUFFIXES):
        if _MASK_STEM.match(rel.stem) or (inner is not None and rel.is_relative_to(inner)):
            continue
        out[rel.with_suffix("").as_posix()].append(rel)
    return dict(out)


def _relative_inside(path: Path, folder: Path) -> Path | None:
    """``path`` relative to ``folder`` when it lies inside it, else ``None``."""
    try:
        return path.resolve().relative_to(folder.resolve())
    except ValueError:
        return None


def _id_prefix(root: Path, folder: Path) -> Path:
    """``folder`` relative to ``root`` for sample ids; its name alone when it lies outside ``root``."""
    rel = _relative_inside(folder, root)
    return Path(folder.name) if rel is None else rel


def _discover_pairs(
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
    masks_by_key = _mask_keys(masks_dir)
    images_by_key = _image_keys(images_dir, masks_dir)
    prefix = _id_prefix(root, images_dir)

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

    mask_like = [images_dir / r for r in _walk(images_dir, IMAGE_SUFFIXES) if _MASK_STEM.match(r.stem)]
    extra_dir = root / "unlabelled"
    inside = any(_relative_inside(extra_dir, folder) is not None for folder in (images_dir, masks_dir))
    if extra_dir.is_dir() and not inside:
        # Masks by name only: blank tiles in an unlabelled pool are images, not masks.
        pool, named_masks = _images_not_masks(extra_dir, by_content=False)
        for rel in pool:
            samples.append(Sample(id=(_id_prefix(root, extra_dir) / rel).as_posix(), image=extra_dir / rel))
        mask_like.extend(extra_dir / r for r in named_masks)
    return samples, problems, mask_like


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


def _discover_unlabelled(root: Path) -> tuple[list[Sample], list[Path]]:
    images, masks = _images_not_masks(root)
    return [Sample(id=rel.as_posix(), image=root / rel) for rel in images], [root / r for r in masks]


def _discover_extra_unlabelled(
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
    images, named_masks = _images_not_masks(folder, by_content=False)
    kept: list[Path] = []
    for rel in images:
        resolved = (folder / rel).resolve()
        if resolved in mask_files or any(p in mask_files for p in resolved.parents):
            named_masks.append(rel)  # a mask (or inside the mask folder) of the dataset itself
        else:
            kept.append(rel)
    kept, looks = _drop_mask_folders(folder, kept)
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


# ---------------------------------------------------------------------------------------- masks or images


def _images_not_masks(folder: Path, *, by_content: bool = True) -> tuple[list[Path], list[Path]]:
    """Image files under ``folder`` (relative) split into images and masks.

    Masks by name: ``*_mask``/``*_mask_N`` files and files inside a folder named like masks; with
    ``by_content``, also every file of a folder whose sampled images hold two values or fewer.
    """
    images: list[Path] = []
    masks: list[Path] = []
    for rel in _walk(folder, IMAGE_SUFFIXES):
        named = _MASK_STEM.match(rel.stem) or any(_MASK_DIR.match(part) for part in rel.parts[:-1])
        (masks if named else images).append(rel)
    if by_content:
        images, looks = _drop_mask_folders(folder, images)
        masks.extend(looks)
    return images, sorted(masks)


def _drop_mask_folders(folder: Path, rels: list[Path]) -> tuple[list[Path], list[Path]]:
    """``rels`` split into those outside and those inside sub-folders that hold masks (by content)."""
    by_parent: dict[Path, list[Path]] = defaultdict(list)
    for rel in rels:
        by_parent[rel.parent].append(rel)
    kept: list[Path] = []
    masks: list[Path] = []
    for _parent, files in sorted(by_parent.items()):
        (masks if _holds_masks([folder / r for r in files]) else kept).extend(files)
    return kept, masks


def _holds_masks(files: list[Path]) -> bool:
    """Whether every probed file (up to :data:`MASK_PROBE_FILES`, evenly spaced) looks like a mask.

    A mask has two values or fewer, one of them 0 (background) unless they are 1/255 (all foreground).
    """
    if not files:
        return False
    step = max(1, len(files) // MASK_PROBE_FILES)
    return all(_few_values(path) for path in files[::step][:MASK_PROBE_FILES])


def _few_values(path: Path) -> bool:
    import numpy as np

    from teachseg.data.imageio import _read_raw

    try:
        array = _read_raw(path, palette_indices=True)
    except DataError:
        return False  # unreadable: data check reports it as an image problem
    flat = array.reshape(-1)
    # A photograph shows many values within its first pixels; only then pay for the whole array.
    if np.unique(flat[:4096]).size > 2:
        return False
    values = np.unique(flat)
    # A mask holds background 0 and/or one foreground value (1, 255, ...); a flat grey image is no mask.
    return bool(values.size <= 2 and (values.min() == 0 or set(values.tolist()) <= {1, 255, 65535}))


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
        A JSON-ready dict: ``layout``, ``layout_reason`` (why it was chosen), ``images_dir`` and
        ``masks_dir`` (``pairs`` layout, else ``None``), ``root``, ``samples``, ``pairs``, ``unlabelled``,
        ``extra_masks`` (images with more than one mask file), ``masks_skipped`` (mask files kept out of
        ``unlabelled_dirs``), ``mask_like`` (``count``, ``folders`` -> count, ``examples``: files that look
        like masks and label nothing), ``classes`` (class -> number of images), ``image_size``
        (``height``/``width`` -> ``min``/``median``/``max``), ``mask_coverage`` (``mean`` foreground share
        over readable masks, ``empty`` images whose mask is all background), ``problems`` (one line each,
        naming the file) and ``risks`` (one line each; ``data check --strict`` fails when there is any;
        later sections of the report, e.g. duplicates, append theirs).
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

    mask_like_folders: dict[str, int] = defaultdict(int)
    for path in d.mask_like:
        mask_like_folders[str(path.parent)] += 1
    risks = []
    if problems:
        risks.append(f"{len(problems)} problems (see problems)")
    if d.mask_like:
        risks.append(f"{len(d.mask_like)} files look like masks; set data.masks_dir")
    if d.samples and not d.labelled:
        risks.append("no image has a mask: nothing to train or validate on")
    return {
        "root": str(d.root),
        "layout": d.layout,
        "layout_reason": d.reason,
        "images_dir": None if d.images_dir is None else str(d.images_dir),
        "masks_dir": None if d.masks_dir is None else str(d.masks_dir),
        "samples": len(d.samples),
        "pairs": len(d.labelled),
        "unlabelled": len(d.unlabelled),
        "extra_masks": sum(len(s.masks) > 1 for s in d.samples),
        "masks_skipped": d.masks_skipped,
        "mask_like": {
            "count": len(d.mask_like),
            "folders": dict(sorted(mask_like_folders.items())),
            "examples": [str(p) for p in d.mask_like[:5]],
        },
        "classes": dict(sorted(classes.items())),
        "image_size": {"height": stats(heights), "width": stats(widths)},
        "mask_coverage": {
            "mean": float(np.mean(coverage)) if coverage else None,
            "empty": int(empty),
            "checked": len(coverage),
        },
        "problems": problems,
        "risks": risks,
    }
