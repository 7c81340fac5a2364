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

This module is the entry point; the layouts live in :mod:`.layouts`, folder walking and mask detection in
:mod:`.folders`, the :class:`Sample` and :class:`Discovery` records in :mod:`.records`, and the summary that
``teachseg data check`` prints in :mod:`.check`.

Example:
    >>> d = discover(Path("../shared/data/busi"))
    >>> d.layout, len(d.labelled)
    ('busi', 612)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from teachseg.data.imageio import IMAGE_SUFFIXES
from teachseg.data.layouts import (
    Layout,
    busi_samples,
    detect_layout,
    explicit_folders,
    extra_unlabelled_samples,
    pairs_samples,
    unlabelled_samples,
)
from teachseg.data.records import Discovery
from teachseg.errors import DataError

LAYOUTS = ("auto", "pairs", "busi", "unlabelled")


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
        chosen = explicit_folders(root, images_dir, masks_dir)
    elif layout == "auto":
        chosen = detect_layout(root)
    elif layout == "pairs":
        chosen = Layout("pairs", "layout 'pairs' set", root / "images", root / "masks")
    else:
        chosen = Layout(layout, f"layout {layout!r} set")

    mask_like: list[Path] = []
    if chosen.name == "pairs":
        assert chosen.images_dir is not None and chosen.masks_dir is not None
        samples, problems, mask_like = pairs_samples(root, chosen.images_dir, chosen.masks_dir)
    elif chosen.name == "busi":
        samples, problems = busi_samples(root)
    else:
        samples, mask_like = unlabelled_samples(root)
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
        extra, n_masks, looks = extra_unlabelled_samples(Path(folder), ids, seen_files, mask_files)
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
