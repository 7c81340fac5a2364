"""The duplicates section of ``teachseg data check``: groups a split would use, duplicate sets and pairs, and
whether their labels contradict each other."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from teachseg.data.duplicates import default_cache_file, find_duplicates, hash_images
from teachseg.data.grouping import build_groups, slides_from_manifests
from teachseg.data.masks import read_mask
from teachseg.data.records import Discovery, Sample
from teachseg.errors import DataError

#: Near-duplicate masks "agree" when their Dice (after resizing one to the other) is at least this.
MASKS_AGREE_DICE = 0.9


def duplicates_summary(
    discovery: Discovery, *, mat_variable: str | None = None, cache_file: Path | None = None
) -> dict[str, Any]:
    """Groups and duplicates of a dataset as ``teachseg data check`` reports them (JSON-ready).

    Returns:
        ``groups`` (number of groups of labelled images that a split would use with the default
        ``data.duplicates: group`` and no ``group_regex``), ``slides`` (slides named by tile manifests),
        ``grouped_by``, ``hashed``/``decoded`` (images fingerprinted / decoded, the rest came from the
        cache), ``threshold``, ``exact`` (sets: ``ids``, ``classes``, ``labelled``, ``masks_agree``),
        ``near`` (pairs: the same plus ``distance``) and ``risks`` (one line each: identical images whose
        classes or masks disagree, near duplicates in different classes, i.e. contradictory labels).
        Duplicates with consistent labels are listed but are no risk: training keeps each set in one split.
        ``mask_dice`` is the lowest Dice between the set's masks (resized to the first one's size).
    """
    by_id = discovery.by_id()
    found = hash_images(
        {s.id: s.image for s in discovery.samples},
        cache_file=cache_file if cache_file is not None else default_cache_file(discovery.root),
    )
    dups = find_duplicates(found.hashes)
    slides = slides_from_manifests(discovery.samples)
    keys = build_groups(discovery.samples, None, slides, dups.links()).keys
    groups = {keys[s.id] for s in discovery.samples if s.labelled}
    grouped_by = (["tile manifests"] if slides else []) + (["duplicates"] if dups.links() else [])

    def entry(ids: Sequence[str]) -> dict[str, Any]:
        samples = [by_id[i] for i in ids]
        agree, dice = _masks_agree(samples, mat_variable)
        return {
            "ids": list(ids),
            "classes": [s.cls for s in samples],
            "labelled": [s.labelled for s in samples],
            "masks_agree": agree,
            "mask_dice": dice,
        }

    exact = [entry(ids) for ids in dups.exact]
    near = [{**entry((a, b)), "distance": d} for a, b, d in dups.near]
    # Identical pixels with different labels contradict each other; near duplicates are often neighbouring
    # frames whose lesion moved, so only a class disagreement is a contradiction there.
    risks = []
    bad_exact = [e for e in exact if e["masks_agree"] is False or _classes_differ(e)]
    if bad_exact:
        risks.append(
            f"{len(bad_exact)} set(s) of identical images with different classes or masks (contradictory "
            f"labels), e.g. {', '.join(bad_exact[0]['ids'])}"
        )
    bad_near = [e for e in near if _classes_differ(e)]
    if bad_near:
        risks.append(
            f"{len(bad_near)} near-duplicate pair(s) in different classes, e.g. {', '.join(bad_near[0]['ids'])}"
        )
    return {
        "groups": len(groups),
        "slides": len(set(slides.values())),
        "grouped_by": grouped_by,
        "hashed": len(found.hashes),
        "decoded": found.decoded,
        "threshold": dups.threshold,
        "exact": exact,
        "near": near,
        "risks": risks,
    }


def _classes_differ(entry: dict[str, Any]) -> bool:
    return len({c for c, labelled in zip(entry["classes"], entry["labelled"], strict=True) if labelled}) > 1


def _masks_agree(samples: Sequence[Sample], mat_variable: str | None) -> tuple[bool | None, float | None]:
    """(whether the masks of ``samples`` agree, lowest pairwise Dice); ``(None, None)`` with fewer than two
    readable masks. Masks of another size are resized (nearest) to the first's size before comparing."""

    masks = []
    for s in samples:
        if not s.labelled:
            continue
        try:
            masks.append(read_mask(s.masks, mat_variable=mat_variable))
        except DataError:
            continue
    if len(masks) < 2:
        return None, None
    first = masks[0]
    dices = [_dice(first, _resize_mask(m, first.shape)) for m in masks[1:]]
    dice = min(dices)
    same_size = all(m.shape == first.shape for m in masks)
    exact = same_size and all(np.array_equal(first, m) for m in masks[1:])
    return bool(exact or dice >= MASKS_AGREE_DICE), round(dice, 4)


def _resize_mask(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if mask.shape == shape:
        return mask
    from PIL import Image

    image = Image.fromarray(mask.astype(np.uint8) * 255).resize(
        (shape[1], shape[0]), Image.Resampling.NEAREST
    )
    return np.asarray(image) > 0


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total
