"""Seeded, stratified, group-aware train/val/test splits, and label dropping for few-label experiments.

Rules:

* only labelled images go to train/val/test; unlabelled images only ever feed pseudo-labels;
* groups never straddle splits. A sample's group is, in order of precedence: the ``group_regex`` match on
  its file name (a patient or a slide), the slide its tile came from (read from the ``*_tiles.json``
  manifests that ``teachseg tile`` writes, see :func:`~teachseg.data.grouping.slides_from_manifests`), or
  the sample alone; labelled images with the same content (``same_content``, from
  :mod:`teachseg.data.duplicates`) then join one group (``duplicates="group"``), or all but one of them
  are left out (``"drop"``);
* unlabelled images never merge two groups of labelled images, nor decide which duplicate is kept, so
  adding unlabelled images never moves a labelled one. They bind the unlabelled pool instead: an
  unlabelled image tied to a validation, test or selection group (a tile of a validation slide, a copy of a
  test image, or a copy of a training image and of a test one) is never pseudo-labelled; it is listed in
  ``unlabelled_excluded``;
* ``select_fraction > 0`` holds out a selection split, drawn from what val/test left like val (by class, whole
  groups, its own seeded draw, so val/test do not change): the images that choose between methods, which no
  decision inside a run reads;
* val and test are drawn per class in proportion to its size (largest-remainder rounding); every class
  with at least two images gets a val image when ``val_fraction > 0``, and train always keeps at least
  one group of each class that has two or more;
* ``label_fraction < 1`` keeps the masks of whole training groups, about ``round(label_fraction *
  n_train)`` images (at least one group), stratified by class; the others become unlabelled and are listed
  in ``label_dropped``. So no image that lost its mask is a duplicate or a patient/slide-mate of one that
  kept it.

The random draws for val/test come first and only depend on the labelled samples, so the same seed gives
the same val/test set whatever ``label_fraction`` or ``select_fraction`` is or how many unlabelled images are
added.

How val/test are drawn and labels dropped: :mod:`teachseg.data.stratify`; how groups are formed:
:mod:`teachseg.data.grouping`; the :class:`~teachseg.data.split_record.Split` record and its ``split.json``:
:mod:`teachseg.data.split_record`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from teachseg.data.grouping import Group, build_groups, duplicates_to_drop, group_key, groups_of
from teachseg.data.records import Sample
from teachseg.data.split_record import Split
from teachseg.data.stratify import assign_groups, drop_labels
from teachseg.errors import ConfigError

DUPLICATE_MODES = ("group", "drop", "off")


def make_split(
    samples: Sequence[Sample],
    *,
    seed: int,
    val_fraction: float = 0.05,
    test_fraction: float = 0.0,
    label_fraction: float = 1.0,
    group_regex: str | None = None,
    slides: Mapping[str, str] | None = None,
    same_content: Sequence[Sequence[str]] = (),
    duplicates: str = "group",
    select_fraction: float = 0.0,
) -> Split:
    """Split ``samples`` into train/val/test/unlabelled (see the module docstring for the rules).

    Args:
        samples: every sample of the dataset, labelled and unlabelled.
        seed: seed of every random draw.
        val_fraction: share of the labelled images for validation.
        test_fraction: share of the labelled images for the test set.
        label_fraction: share of the training images that keep their masks.
        group_regex: regex on the file name whose first group (or whole match) is the group; overrides
            ``slides`` for the samples it matches.
        slides: sample id -> source slide (:func:`~teachseg.data.grouping.slides_from_manifests`); tiles of one
            slide form one group.
        same_content: sets of ids with the same pixels or the same picture, each set tying its members
            (:meth:`teachseg.data.duplicates.Duplicates.links`: exact sets and near pairs). Pass the links,
            not their closure (``clusters``): a cluster already merged through an unlabelled image ties
            labelled images that are not duplicates of each other.
        duplicates: ``"group"`` (labelled images tied by the sets join one group), ``"drop"`` (keep the
            first by id of each set of tied labelled images, no unlabelled image tied to a labelled one, and
            one of each set of unlabelled images; the others are left out and listed in
            ``duplicates_dropped``) or ``"off"`` (``same_content`` ignored).
        select_fraction: share of the labelled images held out to choose between methods (0: none).

    Example:
        >>> split = make_split(discover(root).samples, seed=0, val_fraction=0.1, label_fraction=0.25)
        >>> len(split.train), len(split.label_dropped)

    Raises:
        ConfigError: a fraction out of range, an invalid ``group_regex`` or an unknown ``duplicates``.
    """
    _check_fractions(val_fraction, test_fraction, label_fraction)
    _check_select(select_fraction, val_fraction + test_fraction)
    pattern = _compile(group_regex)
    if duplicates not in DUPLICATE_MODES:
        raise ConfigError(
            f"data.duplicates = {duplicates!r} is not a known mode",
            fix=f"use one of: {', '.join(DUPLICATE_MODES)}",
        )
    ordered = sorted(samples, key=lambda s: s.id)
    content = [list(c) for c in same_content] if duplicates != "off" else []
    dropped_dups = duplicates_to_drop(ordered, content) if duplicates == "drop" else set()
    ordered = [s for s in ordered if s.id not in dropped_dups]
    grouping = build_groups(
        ordered, pattern, slides or {}, content if duplicates == "group" else (), dropped=dropped_dups
    )
    keys = grouping.keys
    labelled = [s for s in ordered if s.labelled]
    rng = np.random.default_rng(seed)

    groups = groups_of(labelled, keys)
    train_groups, val, test = assign_groups(groups, val_fraction, test_fraction, rng)
    train_groups, select = _draw_select(train_groups, select_fraction, len(labelled), seed)
    kept, dropped = drop_labels(train_groups, label_fraction, rng)

    held_out = {keys[i] for i in (*val, *test, *select)}
    excluded = [i for i, reach in grouping.reaches.items() if reach & held_out]
    unlabelled = [i for i, reach in grouping.reaches.items() if not reach & held_out]

    base = [group_key(s, pattern) for s in ordered]
    grouped_by = []
    if any(k.startswith("group:") for k in base):
        grouped_by.append("group_regex")
    if any(k.startswith("id:") and s.id in (slides or {}) for s, k in zip(ordered, base, strict=True)):
        grouped_by.append("tile manifests")
    if duplicates == "group" and content:
        grouped_by.append("duplicates")

    return Split(
        train=sorted(kept),
        val=sorted(val),
        test=sorted(test),
        unlabelled=sorted([*unlabelled, *dropped]),
        label_dropped=sorted(dropped),
        seed=int(seed),
        val_fraction=float(val_fraction),
        test_fraction=float(test_fraction),
        label_fraction=float(label_fraction),
        group_regex=group_regex,
        classes={s.id: s.cls for s in ordered},
        groups=len(groups),
        grouped_by=grouped_by,
        duplicates=duplicates,
        duplicates_dropped=sorted(dropped_dups),
        unlabelled_excluded=sorted(excluded),
        select=sorted(select),
        select_fraction=float(select_fraction),
    )


def _draw_select(
    train_groups: list[Group], select_fraction: float, n_labelled: int, seed: int
) -> tuple[list[Group], list[str]]:
    """Move ``round(select_fraction * n_labelled)`` images' worth of whole groups from train to the selection
    split, by class as val is drawn, with a draw of its own (so val and test are those of ``select_fraction`` 0)."""
    n_train = sum(len(g) for g in train_groups)
    if select_fraction <= 0 or n_train == 0:
        return train_groups, []
    rng = np.random.default_rng([seed, 0x5E1EC7])
    share = min(select_fraction * n_labelled / n_train, 0.9)
    train_groups, select, _ = assign_groups(train_groups, share, 0.0, rng)
    return train_groups, select


# ---------------------------------------------------------------------------------------------- checks


def _check_fractions(val_fraction: float, test_fraction: float, label_fraction: float) -> None:
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"data.val_fraction = {val_fraction} is out of range", fix="use a value in [0, 1)")
    if not 0.0 <= test_fraction < 1.0:
        raise ConfigError(
            f"data.test_fraction = {test_fraction} is out of range", fix="use a value in [0, 1)"
        )
    if val_fraction + test_fraction >= 1.0:
        raise ConfigError(
            f"data.val_fraction + data.test_fraction = {val_fraction + test_fraction} leaves no training images",
            fix="make their sum smaller than 1 (0.9 at most is sensible)",
        )
    if not 0.0 < label_fraction <= 1.0:
        raise ConfigError(
            f"data.label_fraction = {label_fraction} is out of range", fix="use a value in (0, 1]"
        )


def _check_select(select_fraction: float, held_out: float) -> None:
    if not 0.0 <= select_fraction < 1.0 or select_fraction + held_out >= 1.0:
        raise ConfigError(
            f"data.select_fraction = {select_fraction} is out of range (val + test take {held_out:g})",
            fix="use a value in [0, 1) that leaves training images, e.g. 0.1",
        )


def _compile(group_regex: str | None) -> re.Pattern[str] | None:
    if group_regex is None:
        return None
    try:
        return re.compile(group_regex)
    except re.error as exc:
        raise ConfigError(
            f"data.group_regex {group_regex!r} is not a valid regular expression ({exc})",
            fix="fix the pattern, e.g. '^(patient\\d+)_' to keep each patient's images together",
        ) from None
