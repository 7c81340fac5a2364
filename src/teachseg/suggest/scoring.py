"""Informativeness of one candidate from its members' probability maps: plain NumPy, testable without a model.

A *member* is one prediction of the candidate: the model on one flip view (test-time augmentation), or,
for a self-training run, the Teacher and the Student on each view. Per pixel, ``mean`` is the members' mean
probability and ``spread`` their standard deviation (0 when they agree, at most 0.5).

The score is built so that blurry borders do not win:

* **uncertain tumour-like pixels** ``R``: the mean probability lies in ``band`` (default 0.1-0.9: neither
  confidently background nor confidently tumour), and the set is *opened* with a disc of radius
  ``border_px``, which removes structures thinner than ``2 * border_px + 1`` pixels. The ring of soft
  probabilities around a confidently segmented lesion is one or two pixels wide and vanishes; a region the
  model hesitates about as a whole stays;
* ``uncertainty``: the mean ``spread`` over ``R`` (TTA variance, and Teacher-Student disagreement when both
  exist, since they are members alike);
* ``uncertain_area``: ``|R|`` as a share of the image;
* ``informativeness = uncertainty * uncertain_area ** area_exponent``: with ``area_exponent`` 1 it is the
  total spread over ``R`` per image pixel; the default 0.5 lets a large hesitant region count more than a
  small one without letting area alone decide (an image the members agree about scores 0 whatever its area);
* ``disagreement`` (reported, self-training runs only): the mean ``|p_teacher - p_student|`` over ``R``.

Example:
    >>> probs = np.stack([view_a, view_b, view_c])        # doctest: +SKIP
    >>> parts = score_members(probs, ScoreSettings())       # doctest: +SKIP
    >>> parts.informativeness, parts.uncertain_area         # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from teachseg.errors import ConfigError

#: Flip views a member can be predicted on besides the image as it is (``h``: left-right, ``v``: up-down).
FLIPS = ("h", "v")


@dataclass(frozen=True)
class ScoreSettings:
    """The settings of the score (defaults stated in the module docstring; the benchmark chooses
    ``area_exponent`` and ``diversity`` on validation).

    Attributes:
        band: mean probabilities counted as uncertain and tumour-like, ``(low, high)``.
        border_px: radius of the opening that removes thin uncertain rings (0: keep them).
        area_exponent: weight of the uncertain area in the informativeness (0: ignore the area).
        diversity: exponent of the distance term in the greedy choice (0: informativeness alone).
        flips: the flip views of test-time augmentation (empty: the image as it is only).
    """

    band: tuple[float, float] = (0.1, 0.9)
    border_px: int = 2
    area_exponent: float = 0.5
    diversity: float = 1.0
    flips: tuple[str, ...] = FLIPS

    def __post_init__(self) -> None:
        low, high = self.band
        if not 0.0 <= low < high <= 1.0:
            raise ConfigError(
                f"the uncertainty band {low:g}-{high:g} is not a range of probabilities",
                fix="give two probabilities, low < high, e.g. --band 0.1 0.9",
            )
        if self.border_px < 0 or self.area_exponent < 0 or self.diversity < 0:
            raise ConfigError(
                "border_px, area_exponent and diversity must not be negative",
                fix="use 0 to switch a part off",
            )
        unknown = [f for f in self.flips if f not in FLIPS]
        if unknown:
            raise ConfigError(
                f"unknown flip view(s) {', '.join(unknown)}", fix=f"use any of: {', '.join(FLIPS)}"
            )

    def to_json(self) -> dict[str, object]:
        """The settings as written to ``suggest.json``."""
        return {
            "band": list(self.band),
            "border_px": self.border_px,
            "area_exponent": self.area_exponent,
            "diversity": self.diversity,
            "flips": list(self.flips),
        }


@dataclass
class Parts:
    """The parts of one candidate's informativeness (see the module docstring) and its spread map."""

    uncertainty: float
    uncertain_area: float
    disagreement: float = math.nan
    #: per-pixel spread at the model's input size (for the contact sheet), float32 in [0, 0.5]
    spread: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32), repr=False)

    def informativeness(self, area_exponent: float) -> float:
        """``uncertainty * uncertain_area ** area_exponent``."""
        return float(self.uncertainty * self.uncertain_area**area_exponent)


def _disc(radius: int) -> np.ndarray:
    r = np.arange(-radius, radius + 1)
    return (r[:, None] ** 2 + r[None, :] ** 2) <= radius**2


def uncertain_region(mean: np.ndarray, band: tuple[float, float], border_px: int) -> np.ndarray:
    """Boolean mask of the uncertain tumour-like pixels: ``mean`` in ``band``, opened by a disc of
    ``border_px`` (structures thinner than ``2 * border_px + 1`` pixels removed)."""
    low, high = band
    region = (mean >= low) & (mean <= high)
    if border_px > 0 and region.any():
        region = ndi.binary_opening(region, structure=_disc(border_px))
    return region


def score_members(members: np.ndarray, settings: ScoreSettings, models: np.ndarray | None = None) -> Parts:
    """The :class:`Parts` of one candidate from its members' probabilities.

    Args:
        members: (M, H, W) probabilities, one map per member (model x view).
        settings: the band and border of the uncertain region.
        models: (M,) index of the model each member comes from; with two models (Teacher 0, Student 1)
            ``disagreement`` is their mean absolute difference over the region.
    """
    members = np.asarray(members, dtype=np.float32)
    if members.ndim != 3 or members.shape[0] < 1:
        raise ValueError(f"expected (members, H, W) probabilities, got shape {members.shape}")
    mean = members.mean(axis=0)
    spread = members.std(axis=0) if members.shape[0] > 1 else np.zeros_like(mean)
    region = uncertain_region(mean, settings.band, settings.border_px)
    n = int(region.sum())
    uncertainty = float(spread[region].mean()) if n else 0.0
    disagreement = math.nan
    if models is not None and len(set(np.asarray(models).tolist())) == 2:
        idx = np.asarray(models)
        a, b = (members[idx == k].mean(axis=0) for k in sorted(set(idx.tolist())))
        disagreement = float(np.abs(a - b)[region].mean()) if n else 0.0
    return Parts(uncertainty, n / region.size, disagreement, spread.astype(np.float32))
