"""Class-stratified assignment of whole groups to train/val/test, and nested label dropping.

Label dropping ranks the training groups (one image each, unless a patient, a slide or duplicates tie several
together) once per seed: a seeded shuffle within each class, then the classes interleaved in proportion to
their numbers of groups. It keeps the masks of a prefix of that ranking, about ``round(label_fraction *
n_train)`` images. So the images kept at a smaller ``label_fraction`` are always a subset of those kept at a
larger one, for any class sizes, no group is split between kept and withheld masks, and with groups of one
image every class keeps within one image of its proportional share at every fraction. (Per-fraction
largest-remainder quotas would not nest: with classes of 1, 3 and 3 images they give the single image of the
first class a mask when 3 are kept and take it back when 4 are, the "Alabama paradox" of apportionment.)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from teachseg.data.grouping import Group


def assign_groups(
    groups: list[Group], val_fraction: float, test_fraction: float, rng: np.random.Generator
) -> tuple[list[Group], list[str], list[str]]:
    """Seeded, class-stratified assignment of whole groups to train / val / test."""
    by_class: dict[str | None, list[Group]] = defaultdict(list)
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

    train: list[Group] = []
    val: list[Group] = []
    test: list[Group] = []
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


def drop_labels(
    train: Sequence[Group], label_fraction: float, rng: np.random.Generator
) -> tuple[list[str], list[str]]:
    """Keep the masks of whole training groups, a stratified ``label_fraction`` of the images; return
    (kept ids, dropped ids).

    The groups are ranked once per seed (a seeded shuffle within each class of groups, then the classes
    interleaved in proportion to their numbers of groups) and the kept groups are the shortest prefix of
    that ranking whose image count is closest to ``round(label_fraction * n_train)`` (at least one group).
    The ranking does not depend on ``label_fraction`` and that prefix only grows with it, so a smaller
    fraction keeps a subset of what a larger one keeps. With one image per group this is the image-by-image
    draw: exactly that many images, each class within one image of its share.
    """
    ids = [s.id for g in train for s in g.samples]
    if label_fraction >= 1.0 or not train:
        return ids, []
    by_class: dict[str | None, list[Group]] = defaultdict(list)
    for g in sorted(train, key=lambda g: g.key):
        by_class[g.cls].append(g)
    classes = sorted(by_class, key=lambda c: "" if c is None else "\x00" + c)
    shuffled = [[by_class[c][i] for i in rng.permutation(len(by_class[c]))] for c in classes]
    ranked = [shuffled[k][taken] for k, taken in interleave([len(x) for x in shuffled])]
    target = max(1, int(round(label_fraction * len(ids))))
    counts = np.cumsum([len(g) for g in ranked])
    n_groups = int(np.argmin(np.abs(counts - target))) + 1  # argmin: the first of equally close prefixes
    kept = [s.id for g in ranked[:n_groups] for s in g.samples]
    dropped = [s.id for g in ranked[n_groups:] for s in g.samples]
    return kept, dropped


def interleave(sizes: Sequence[int]) -> list[tuple[int, int]]:
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
