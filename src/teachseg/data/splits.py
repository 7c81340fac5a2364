"""Seeded, stratified, group-aware train/val/test splits, and label dropping for few-label experiments.

Rules:

* only labelled images go to train/val/test; unlabelled images only ever feed pseudo-labels;
* groups (``group_regex`` on the file name: a patient or a slide) never straddle splits;
* val and test are drawn per class in proportion to its size (largest-remainder rounding); every class
  with at least two images gets a val image when ``val_fraction > 0``, and train always keeps at least
  one group of each class that has two or more;
* ``label_fraction < 1`` keeps the masks of ``round(label_fraction * n_train)`` training images (at least
  one), stratified by class; the others become unlabelled and are listed in ``label_dropped``.

The random draws for val/test come first and only depend on the labelled samples, so the same seed gives
the same val/test set whatever ``label_fraction`` is or how many unlabelled images are added, and the
images kept at a smaller ``label_fraction`` are a subset of those kept at a larger one.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from teachseg.data.discover import Sample
from teachseg.errors import ConfigError, DataError

SPLIT_FORMAT = 1


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

    def to_json(self) -> dict[str, Any]:
        return {"format": SPLIT_FORMAT, **asdict(self)}

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
) -> Split:
    """Split ``samples`` into train/val/test/unlabelled (see the module docstring for the rules).

    Example:
        >>> split = make_split(discover(root).samples, seed=0, val_fraction=0.1, label_fraction=0.25)
        >>> len(split.train), len(split.label_dropped)

    Raises:
        ConfigError: a fraction out of range or an invalid ``group_regex``.
    """
    _check_fractions(val_fraction, test_fraction, label_fraction)
    pattern = _compile(group_regex)
    ordered = sorted(samples, key=lambda s: s.id)
    labelled = [s for s in ordered if s.labelled]
    unlabelled = [s.id for s in ordered if not s.labelled]
    rng = np.random.default_rng(seed)

    groups = _groups(labelled, pattern)
    train_groups, val, test = _assign_groups(groups, val_fraction, test_fraction, rng)
    train_samples = [s for g in train_groups for s in g.samples]
    kept, dropped = _drop_labels(train_samples, label_fraction, rng)

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


def _groups(labelled: Sequence[Sample], pattern: re.Pattern[str] | None) -> list[_Group]:
    by_key: dict[str, list[Sample]] = defaultdict(list)
    for s in labelled:
        by_key[group_key(s, pattern)].append(s)
    return [_Group(k, v) for k, v in sorted(by_key.items())]


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
    """Keep the masks of a stratified ``label_fraction`` of ``train``; return (kept ids, dropped ids)."""
    if label_fraction >= 1.0 or not train:
        return [s.id for s in train], []
    by_class: dict[str | None, list[Sample]] = defaultdict(list)
    for s in sorted(train, key=lambda s: s.id):
        by_class[s.cls].append(s)
    classes = sorted(by_class, key=lambda c: "" if c is None else "\x00" + c)
    keep_total = max(1, int(round(label_fraction * len(train))))
    quotas = _quotas({c: len(by_class[c]) for c in classes}, keep_total)
    kept: list[str] = []
    dropped: list[str] = []
    for c in classes:
        order = [by_class[c][i] for i in rng.permutation(len(by_class[c]))]
        kept.extend(s.id for s in order[: quotas[c]])
        dropped.extend(s.id for s in order[quotas[c] :])
    return kept, dropped
