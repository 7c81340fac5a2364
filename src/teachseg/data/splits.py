"""Seeded, stratified, group-aware train/val/test splits, and label dropping for few-label experiments.

Rules:

* only labelled images go to train/val/test; unlabelled images only ever feed pseudo-labels;
* groups never straddle splits. A sample's group is, in order of precedence: the ``group_regex`` match on
  its file name (a patient or a slide), the slide its tile came from (read from the ``*_tiles.json``
  manifests that ``teachseg tile`` writes, see :func:`tile_slides`), or the sample alone; images with the
  same content (``same_content``, from :mod:`teachseg.data.duplicates`) then join one group
  (``duplicates="group"``), or all but one of them are left out (``"drop"``);
* groups also bind the unlabelled pool: an unlabelled image whose group has a validation or test image (a
  tile of a validation slide, a copy of a test image) is never pseudo-labelled; it is listed in
  ``unlabelled_excluded``;
* val and test are drawn per class in proportion to its size (largest-remainder rounding); every class
  with at least two images gets a val image when ``val_fraction > 0``, and train always keeps at least
  one group of each class that has two or more;
* ``label_fraction < 1`` keeps the masks of ``round(label_fraction * n_train)`` training images (at least
  one), stratified by class; the others become unlabelled and are listed in ``label_dropped``.

The random draws for val/test come first and only depend on the labelled samples, so the same seed gives
the same val/test set whatever ``label_fraction`` is or how many unlabelled images are added.

Label dropping ranks the training images once per seed (a seeded shuffle within each class, then the classes
interleaved in proportion to their sizes) and keeps the first ``round(label_fraction * n_train)``. So the
images kept at a smaller ``label_fraction`` are always a subset of those kept at a larger one, for any class
sizes, and every class keeps within one image of its proportional share at every fraction. (Per-fraction
largest-remainder quotas would not nest: with classes of 1, 3 and 3 images they give the single image of the
first class a mask when 3 are kept and take it back when 4 are, the "Alabama paradox" of apportionment.)
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from teachseg.data.duplicates import connected
from teachseg.data.records import Sample
from teachseg.errors import ConfigError, DataError

SPLIT_FORMAT = 1
DUPLICATE_MODES = ("group", "drop", "off")
TILE_MANIFEST_SUFFIX = "_tiles.json"
_TILE_FOLDERS = ("images", "masks", "unlabelled")


@dataclass
class Split:
    """Which image ids train, validate, test, or serve as unlabelled data."""

    train: list[str]
    val: list[str]
    test: list[str]
    unlabelled: list[str]
    label_dropped: list[str]
    seed: int
    val_fraction: float
    test_fraction: float
    label_fraction: float
    group_regex: str | None
    classes: dict[str, str | None] = field(default_factory=dict)
    groups: int = 0
    grouped_by: list[str] = field(default_factory=list)
    duplicates: str = "off"
    duplicates_dropped: list[str] = field(default_factory=list)
    unlabelled_excluded: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": SPLIT_FORMAT,
            **asdict(self),
            "unlabelled_excluded_count": len(self.unlabelled_excluded),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Split:
        if not isinstance(d, dict):
            raise ValueError("a split must be a JSON object")
        data = {k: v for k, v in d.items() if k != "format"}
        lists = ("train", "val", "test", "unlabelled", "label_dropped")
        for key in lists:
            if not isinstance(data.get(key), list) or not all(isinstance(i, str) for i in data[key]):
                raise ValueError(f"{key!r} must be a list of image ids")
        return cls(
            **{k: list(data[k]) for k in lists},
            seed=int(data["seed"]),
            val_fraction=float(data["val_fraction"]),
            test_fraction=float(data["test_fraction"]),
            label_fraction=float(data["label_fraction"]),
            group_regex=data.get("group_regex"),
            classes=dict(data.get("classes", {})),
            groups=int(data.get("groups", 0)),
            grouped_by=[str(x) for x in data.get("grouped_by", [])],
            duplicates=str(data.get("duplicates", "off")),
            duplicates_dropped=[str(x) for x in data.get("duplicates_dropped", [])],
            unlabelled_excluded=[str(x) for x in data.get("unlabelled_excluded", [])],
        )

    def save(self, path: Path) -> None:
        """Write the split as JSON, atomically."""
        from teachseg.io import write_json

        write_json(path, self.to_json())

    @classmethod
    def load(cls, path: Path) -> Split:
        """Read a split written by :meth:`save`.

        Raises:
            DataError: the file is missing or is not a split.
        """
        from teachseg.io import read_json

        path = Path(path)
        if not path.is_file():
            raise DataError(
                "split file not found",
                path=path,
                fix="check the path, or create a new split by training again",
            )
        try:
            return cls.from_json(read_json(path))
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(
                f"not a valid split file ({type(exc).__name__}: {exc})",
                path=path,
                fix="delete it so a new split is made, or restore it from the run folder",
            ) from None

    @property
    def labelled(self) -> list[str]:
        """Every id with a mask used for training or evaluation (train + val + test)."""
        return [*self.train, *self.val, *self.test]


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
        slides: sample id -> source slide (:func:`tile_slides`); tiles of one slide form one group.
        same_content: sets of ids with the same pixels or the same picture
            (:meth:`teachseg.data.duplicates.Duplicates.clusters`).
        duplicates: ``"group"`` (each set joins one group), ``"drop"`` (keep one image of each set: the
            first labelled one by id, else the first; the others are left out and listed in
            ``duplicates_dropped``) or ``"off"`` (``same_content`` ignored).

    Example:
        >>> split = make_split(discover(root).samples, seed=0, val_fraction=0.1, label_fraction=0.25)
        >>> len(split.train), len(split.label_dropped)

    Raises:
        ConfigError: a fraction out of range, an invalid ``group_regex`` or an unknown ``duplicates``.
    """
    _check_fractions(val_fraction, test_fraction, label_fraction)
    pattern = _compile(group_regex)
    if duplicates not in DUPLICATE_MODES:
        raise ConfigError(
            f"data.duplicates = {duplicates!r} is not a known mode",
            fix=f"use one of: {', '.join(DUPLICATE_MODES)}",
        )
    ordered = sorted(samples, key=lambda s: s.id)
    content = [list(c) for c in same_content] if duplicates != "off" else []
    dropped_dups = _duplicates_to_drop(ordered, content) if duplicates == "drop" else set()
    ordered = [s for s in ordered if s.id not in dropped_dups]
    keys = build_groups(
        ordered, pattern, slides or {}, content if duplicates == "group" else (), dropped=dropped_dups
    )
    labelled = [s for s in ordered if s.labelled]
    rng = np.random.default_rng(seed)

    groups = _groups(labelled, keys)
    train_groups, val, test = _assign_groups(groups, val_fraction, test_fraction, rng)
    train_samples = [s for g in train_groups for s in g.samples]
    kept, dropped = _drop_labels(train_samples, label_fraction, rng)

    held_out = {keys[i] for i in (*val, *test)}
    excluded = [s.id for s in ordered if not s.labelled and keys[s.id] in held_out]
    unlabelled = [s.id for s in ordered if not s.labelled and keys[s.id] not in held_out]

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
    )


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


# ---------------------------------------------------------------------------------------------- groups


@dataclass
class _Group:
    key: str
    samples: list[Sample]

    @property
    def cls(self) -> str | None:
        """Majority class of the group (ties: the first by name)."""
        counts = Counter(s.cls for s in self.samples)
        return min(counts, key=lambda c: (-counts[c], "" if c is None else c))

    def __len__(self) -> int:
        return len(self.samples)


def group_key(sample: Sample, pattern: re.Pattern[str] | None) -> str:
    """The group a sample belongs to: the regex's first group (or whole match) on the file name, else its id."""
    if pattern is not None:
        m = pattern.search(sample.image.name)
        if m:
            value = m.group(1) if pattern.groups and m.group(1) is not None else m.group(0)
            return "group:" + value
    return "id:" + sample.id


def build_groups(
    samples: Sequence[Sample],
    pattern: re.Pattern[str] | None,
    slides: Mapping[str, str],
    same_content: Sequence[Sequence[str]] = (),
    *,
    dropped: Collection[str] = (),
) -> dict[str, str]:
    """Sample id -> group key: ``group_regex`` match, else source slide, else the id; then every set of
    ``same_content`` ids merges the groups of its members (the merged group keeps the smallest key)."""
    keys: dict[str, str] = {}
    for s in samples:
        key = group_key(s, pattern)
        if key.startswith("id:") and s.id in slides:
            key = "slide:" + slides[s.id]
        keys[s.id] = key
    links = [[keys[i] for i in ids if i in keys and i not in dropped] for ids in same_content]
    # a merged group is named after its patient or slide when it has one
    rank = {"group:": 0, "slide:": 1}
    merged = {
        k: min(comp, key=lambda x: (rank.get(x[: x.index(":") + 1], 2), x))
        for comp in connected(links)
        for k in comp
    }
    return {i: merged.get(k, k) for i, k in keys.items()}


def _groups(labelled: Sequence[Sample], keys: Mapping[str, str]) -> list[_Group]:
    by_key: dict[str, list[Sample]] = defaultdict(list)
    for s in labelled:
        by_key[keys[s.id]].append(s)
    return [_Group(k, v) for k, v in sorted(by_key.items())]


def _duplicates_to_drop(samples: Sequence[Sample], same_content: Sequence[Sequence[str]]) -> set[str]:
    """All but one id of each set: the first labelled one by id is kept, else the first."""
    labelled = {s.id for s in samples if s.labelled}
    present = {s.id for s in samples}
    drop: set[str] = set()
    for ids in same_content:
        members = sorted(i for i in ids if i in present)
        if len(members) < 2:
            continue
        keep = next((i for i in members if i in labelled), members[0])
        drop.update(i for i in members if i != keep)
    return drop


def tile_slides(samples: Sequence[Sample]) -> dict[str, str]:
    """Sample id -> source slide, for the tiles listed in ``teachseg tile`` manifests.

    ``teachseg tile`` writes ``OUT/images/NAME.png`` (+ ``OUT/masks/``) or ``OUT/unlabelled/NAME.png`` and a
    manifest ``OUT/SLIDE_tiles.json`` whose ``tiles`` list each ``name``. A sample whose image lies in such
    an ``OUT`` (or directly beside a manifest) and is listed there belongs to ``SLIDE``. Unreadable
    manifests are ignored (no grouping is better than a crash; ``data check`` reads them again).
    """
    from teachseg.io import read_json

    tiles_of: dict[Path, dict[str, str]] = {}

    def manifests(folder: Path) -> dict[str, str]:
        if folder not in tiles_of:
            found: dict[str, str] = {}
            for manifest in sorted(folder.glob("*" + TILE_MANIFEST_SUFFIX)):
                slide = manifest.name[: -len(TILE_MANIFEST_SUFFIX)]
                try:
                    records = read_json(manifest).get("tiles", [])
                    names = [str(r["name"]) for r in records]
                except (OSError, ValueError, AttributeError, KeyError, TypeError):
                    continue
                found.update(dict.fromkeys(names, slide))
            tiles_of[folder] = found
        return tiles_of[folder]

    out: dict[str, str] = {}
    for s in samples:
        folder = s.image.parent
        stem = s.image.stem
        candidates = [folder.parent] if folder.name in _TILE_FOLDERS else []
        candidates.append(folder)
        for c in candidates:
            slide = manifests(c.resolve()).get(stem)
            if slide is not None:
                out[s.id] = slide
                break
    return out


def _assign_groups(
    groups: list[_Group], val_fraction: float, test_fraction: float, rng: np.random.Generator
) -> tuple[list[_Group], list[str], list[str]]:
    """Seeded, class-stratified assignment of whole groups to train / val / test."""
    by_class: dict[str | None, list[_Group]] = defaultdict(list)
    for g in groups:
        by_class[g.cls].append(g)
    classes = sorted(by_class, key=lambda c: "" if c is None else "\x00" + c)
    sizes = {c: sum(len(g) for g in by_class[c]) for c in classes}
    n = sum(sizes.values())

    q_test = _quotas(sizes, _target(test_fraction, n, minimum_n=3))
    q_val = _quotas(sizes, _target(val_fraction, n, minimum_n=2))
    for c in classes:
        if val_fraction > 0 and sizes[c] >= 2 and len(by_class[c]) >= 2:
            q_val[c] = max(q_val[c], 1)
        # keep at least one image of every class with two or more for training
        room = max(sizes[c] - 1, 0) if sizes[c] >= 2 else sizes[c]
        q_test[c] = min(q_test[c], room)
        q_val[c] = min(q_val[c], room - q_test[c])

    train: list[_Group] = []
    val: list[_Group] = []
    test: list[_Group] = []
    for c in classes:
        order = [by_class[c][i] for i in rng.permutation(len(by_class[c]))]
        n_test = n_val = n_train = 0
        for i, g in enumerate(order):
            last_chance = i == len(order) - 1 and n_train == 0  # every class keeps a training group
            if not last_chance and _fits(n_test, q_test[c], len(g)):
                test.append(g)
                n_test += len(g)
            elif not last_chance and _fits(n_val, q_val[c], len(g)):
                val.append(g)
                n_val += len(g)
            else:
                train.append(g)
                n_train += len(g)

    # Tiny or lumpy data sets: a requested val/test set must not end up empty.
    for target, fraction, minimum_n in ((val, val_fraction, 2), (test, test_fraction, 3)):
        if fraction > 0 and not target and n >= minimum_n and len(train) >= 2:
            target.append(train.pop(int(np.argmin([len(g) for g in train]))))

    return train, [s.id for g in val for s in g.samples], [s.id for g in test for s in g.samples]


def _target(fraction: float, n: int, minimum_n: int) -> int:
    if fraction <= 0 or n == 0:
        return 0
    target = int(round(fraction * n))
    return max(target, 1) if n >= minimum_n else target


def _fits(count: int, quota: int, size: int) -> bool:
    """Take a group while the quota is unmet, unless it would overshoot by more than what is still needed."""
    need = quota - count
    return need > 0 and size - need <= need


def _quotas(sizes: dict[str | None, int], total: int) -> dict[str | None, int]:
    """Split ``total`` over classes in proportion to their sizes (largest remainder, ties by class order)."""
    n = sum(sizes.values())
    if n == 0 or total == 0:
        return dict.fromkeys(sizes, 0)
    exact = {c: total * k / n for c, k in sizes.items()}
    quotas = {c: int(np.floor(v)) for c, v in exact.items()}
    order = sorted(sizes, key=lambda c: -(exact[c] - quotas[c]))  # stable: class order breaks ties
    for c in order[: total - sum(quotas.values())]:
        quotas[c] += 1
    return quotas


# ---------------------------------------------------------------------------------------- label drop


def _drop_labels(
    train: Sequence[Sample], label_fraction: float, rng: np.random.Generator
) -> tuple[list[str], list[str]]:
    """Keep the masks of a stratified ``label_fraction`` of ``train``; return (kept ids, dropped ids).

    The kept images are a prefix of one seeded ranking that does not depend on ``label_fraction``, so a
    smaller fraction keeps a subset of what a larger one keeps.
    """
    if label_fraction >= 1.0 or not train:
        return [s.id for s in train], []
    by_class: dict[str | None, list[Sample]] = defaultdict(list)
    for s in sorted(train, key=lambda s: s.id):
        by_class[s.cls].append(s)
    classes = sorted(by_class, key=lambda c: "" if c is None else "\x00" + c)
    shuffled = [[by_class[c][i] for i in rng.permutation(len(by_class[c]))] for c in classes]
    ranked = [shuffled[k][taken] for k, taken in _interleave([len(x) for x in shuffled])]
    keep_total = max(1, int(round(label_fraction * len(train))))
    return [s.id for s in ranked[:keep_total]], [s.id for s in ranked[keep_total:]]


def _interleave(sizes: Sequence[int]) -> list[tuple[int, int]]:
    """An order of ``sum(sizes)`` draws from classes of these sizes, as (class, draws so far) pairs, such
    that every prefix holds each class within one draw of its proportional share.

    Tijdeman's earliest-deadline rule for the chairman assignment problem (Tijdeman 1980): class ``k``,
    with share ``p_k``, may take draw ``t`` once ``x_k + 1 <= t * p_k + d`` and the eligible class whose
    next draw is due first (smallest ``(x_k + d) / p_k``) takes it, with ``d = 1 - 1 / (2K - 2)``; then
    ``|x_k - t * p_k| <= d < 1`` after every draw ``t``. Exact integer arithmetic (everything times
    ``n * (2K - 2)``); ties go to the first class.
    """
    n, k = sum(sizes), len(sizes)
    if k == 1:
        return [(0, i) for i in range(n)]
    den = 2 * k - 2  # d = (den - 1) / den
    taken = [0] * k
    order: list[tuple[int, int]] = []
    for t in range(1, n + 1):
        open_ = [c for c in range(k) if taken[c] < sizes[c]]
        eligible = [c for c in open_ if (taken[c] + 1) * n * den <= t * sizes[c] * den + n * (den - 1)]
        # Tijdeman's theorem says some class is always eligible; the fallback only guards against a slip.
        pool = eligible or open_
        # deadline (x + d) / p = n * (x * den + den - 1) / (den * size): compare by cross-multiplication
        best = pool[0]
        for c in pool[1:]:
            if (taken[c] * den + den - 1) * sizes[best] < (taken[best] * den + den - 1) * sizes[c]:
                best = c
        order.append((best, taken[best]))
        taken[best] += 1
    return order
