"""The greedy choice: informativeness times distance to what is already chosen or labelled (a weighted
k-center, core-set style), on the encoder's globally pooled bottleneck features.

Each candidate has a feature vector (the mean over the image of the encoder's deepest feature map, scaled to
unit length) and an informativeness. The *centres* start as the labelled training images (anchors) and grow
by every choice. At each step every remaining candidate is valued

    value = (informativeness / max informativeness + FLOOR) * (distance to the nearest centre / largest such
    distance) ** diversity

and the highest value is chosen. ``diversity`` 0 ranks by informativeness alone; the larger it is, the more a
candidate close to a centre is discounted, so ten near-copies of one hard image give one choice, not ten.
With no anchors the first choice is the most informative candidate. ``FLOOR`` keeps the distance term
deciding among candidates the model is sure about (informativeness 0), instead of leaving them to ties.

Hygiene inside the pool: ``groups`` names the duplicate group of each candidate; once one member of a group is
chosen, it counts as labelled, so the others (its duplicates) are never chosen after it.

Ties are broken by a seeded permutation of the candidates, so the choice is deterministic for a seed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from teachseg.errors import ConfigError

#: Added to the normalised informativeness (see the module docstring).
FLOOR = 0.01


@dataclass(frozen=True)
class Pick:
    """One choice: the candidate's index, its value when chosen and the two factors of that value."""

    index: int
    score: float
    informativeness: float  #: normalised to the pool's largest, in [0, 1]
    distance: float  #: distance to the nearest centre over the largest such distance, in [0, 1]


def unit_rows(features: np.ndarray) -> np.ndarray:
    """``features`` (N, C) with every row scaled to unit length (all-zero rows stay zero)."""
    f = np.asarray(features, dtype=np.float64)
    norm = np.linalg.norm(f, axis=1, keepdims=True)
    return np.divide(f, norm, out=np.zeros_like(f), where=norm > 0)


def _nearest(features: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Distance from each row of ``features`` to its nearest row of ``centres`` (inf when there is none)."""
    if len(centres) == 0:
        return np.full(len(features), math.inf)
    d2 = (features**2).sum(1)[:, None] + (centres**2).sum(1)[None, :] - 2 * features @ centres.T
    return np.sqrt(np.clip(d2, 0.0, None)).min(axis=1)


def select(
    informativeness: Sequence[float],
    features: np.ndarray,
    budget: int,
    *,
    diversity: float = 1.0,
    anchors: np.ndarray | None = None,
    groups: Mapping[int, str] | None = None,
    seed: int = 0,
) -> list[Pick]:
    """Choose ``budget`` candidates greedily (see the module docstring).

    Args:
        informativeness: one value per candidate (>= 0).
        features: (N, C) feature vectors of the candidates.
        budget: how many to choose.
        diversity: exponent of the distance term (0: informativeness alone).
        anchors: (K, C) features of the images that already have masks (the first centres).
        groups: candidate index -> duplicate group; a chosen candidate's group-mates are never chosen.
        seed: seed of the tie-breaking permutation.

    Raises:
        ConfigError: ``budget`` is not positive or exceeds what the pool can give.
    """
    info = np.asarray(informativeness, dtype=np.float64)
    n = len(info)
    if budget < 1:
        raise ConfigError(f"the budget is {budget}", fix="give --budget 1 or more")
    if budget > n:
        raise ConfigError(
            f"the budget of {budget} is larger than the pool of {n} candidates",
            fix=f"give --budget {n} or less, or a larger pool",
        )
    feats = unit_rows(features)
    top = info.max() if n else 0.0
    norm = info / top if top > 0 else np.zeros(n)
    centres = unit_rows(anchors) if anchors is not None and len(anchors) else np.zeros((0, feats.shape[1]))
    nearest = _nearest(feats, centres)
    tiebreak = np.random.default_rng(seed).permutation(n)
    open_ = np.ones(n, dtype=bool)
    members: dict[str, list[int]] = {}
    for i, g in (groups or {}).items():
        members.setdefault(g, []).append(i)
    picks: list[Pick] = []
    while len(picks) < budget:
        if not open_.any():
            break
        finite = np.isfinite(nearest) & open_
        largest = nearest[finite].max() if finite.any() else 0.0
        # no centre yet: every candidate is as far; all remaining on a centre: all at distance 0
        dist = np.where(np.isfinite(nearest), nearest / largest if largest > 0 else 0.0, 1.0)
        value = (norm + FLOOR) * dist**diversity
        # highest value first; ties by the seeded permutation
        candidates = np.flatnonzero(open_)
        best = candidates[np.lexsort((tiebreak[candidates], -value[candidates]))[0]]
        picks.append(Pick(int(best), float(value[best]), float(norm[best]), float(min(dist[best], 1.0))))
        open_[best] = False
        for mate in members.get((groups or {}).get(int(best), ""), []):
            open_[mate] = False
        nearest = np.minimum(nearest, _nearest(feats, feats[best : best + 1]))
    if len(picks) < budget:
        raise ConfigError(
            f"the budget of {budget} is larger than the pool once duplicates of the chosen images are left "
            f"out ({len(picks)} distinct candidates)",
            fix=f"give --budget {len(picks)} or less",
        )
    return picks


def random_choice(n: int, budget: int, seed: int = 0) -> list[int]:
    """``budget`` candidate indices drawn uniformly without replacement (the benchmark's random arm)."""
    if not 1 <= budget <= n:
        raise ConfigError(f"cannot draw {budget} of {n} candidates", fix=f"give a budget from 1 to {n}")
    return sorted(np.random.default_rng(seed).choice(n, size=budget, replace=False).tolist())
