"""Summarise a discovered dataset for ``teachseg data check``: sizes, classes, mask coverage, problems."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from teachseg.data.records import Discovery
from teachseg.errors import DataError


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

    from teachseg.data.imageio import image_shape, read_image
    from teachseg.data.masks import read_mask

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
