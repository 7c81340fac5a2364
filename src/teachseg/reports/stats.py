"""Summary statistics for the report: mean +/- SD with a t-based 95% interval, paired bootstrap, Wilcoxon.

The unit of analysis of a paired Teacher-versus-Student comparison is the image: the seeds of one
architecture score the same images again, so each image's difference is averaged over seeds
(:func:`mean_per_image`) before the bootstrap and the Wilcoxon test, which then run over independent
images. Pooling image-seed pairs as if independent would shrink the intervals and the p-values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

N_BOOTSTRAP = 5000


@dataclass(frozen=True)
class Summary:
    """Mean, standard deviation and confidence interval of a sample of scores."""

    n: int
    mean: float
    sd: float
    ci_low: float
    ci_high: float


def clean(values: Iterable[Any]) -> np.ndarray:
    """Finite floats only (None, NaN and text are dropped)."""
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float, np.number)):
            continue
        f = float(v)
        if math.isfinite(f):
            out.append(f)
    return np.asarray(out, dtype=float)


def summarize(values: Iterable[Any], level: float = 0.95) -> Summary:
    """Mean, sample SD and the t-based confidence interval of the mean (NaN where undefined)."""
    from scipy import stats

    x = clean(values)
    n = len(x)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if n == 1:
        return Summary(1, mean, math.nan, math.nan, math.nan)
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return Summary(n, mean, sd, mean - half, mean + half)


def bootstrap_ci(
    diffs: Sequence[float] | np.ndarray, n_resamples: int = N_BOOTSTRAP, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (seeded, so a report rebuilds identically)."""
    x = clean(diffs)
    if len(x) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    chunk = max(1, 2_000_000 // len(x))  # bound memory for large test sets
    for start in range(0, n_resamples, chunk):
        stop = min(n_resamples, start + chunk)
        idx = rng.integers(0, len(x), size=(stop - start, len(x)))
        means[start:stop] = x[idx].mean(axis=1)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return float(lo), float(hi)


def wilcoxon_p(diffs: Sequence[float] | np.ndarray) -> tuple[float | None, str]:
    """Two-sided Wilcoxon signed-rank p-value, or None with the reason it is not defined."""
    x = clean(diffs)
    if len(x) < 2:
        return None, f"n/a: {len(x)} paired image(s), need at least 2"
    if np.all(x == 0):
        return None, "n/a: all differences are zero"
    from scipy import stats

    try:
        res = stats.wilcoxon(x, zero_method="wilcox", alternative="two-sided")
    except ValueError as exc:
        return None, f"n/a: {exc}"
    p = float(res.pvalue)
    if not math.isfinite(p):
        return None, "n/a: undefined for these differences"
    return p, ""


@dataclass(frozen=True)
class Paired:
    """Student minus teacher per-image Dice."""

    n: int
    mean_diff: float
    ci_low: float
    ci_high: float
    p_value: float | None
    note: str
    wins: int
    losses: int


def image_diffs(
    teacher: Sequence[dict[str, Any]], student: Sequence[dict[str, Any]], metric: str = "dice"
) -> dict[str, float]:
    """Per-image ``student - teacher``, keyed by image id, for images with a finite value in both."""
    t = {str(r["id"]): r.get(metric) for r in teacher if r.get("id") is not None}
    diffs: dict[str, float] = {}
    for r in student:
        i = r.get("id")
        if i is not None and str(i) in t:
            a, b = clean([t[str(i)]]), clean([r.get(metric)])
            if len(a) and len(b):
                diffs[str(i)] = float(b[0] - a[0])
    return diffs


def paired_diffs(
    teacher: Sequence[dict[str, Any]], student: Sequence[dict[str, Any]], metric: str = "dice"
) -> np.ndarray:
    """Per-image ``student - teacher`` for images present (with a finite value) in both."""
    return np.asarray(list(image_diffs(teacher, student, metric).values()), dtype=float)


def mean_per_image(scored: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Each image's value averaged over the seeds (or models) that scored it, in image-id order.

    Example:
        >>> mean_per_image([{"a": 0.1, "b": 0.3}, {"a": 0.3}])
        {'a': 0.2, 'b': 0.3}
    """
    values: dict[str, list[float]] = {}
    for per_image in scored:
        for image_id, v in per_image.items():
            x = clean([v])
            if len(x):
                values.setdefault(str(image_id), []).append(float(x[0]))
    return {i: float(np.mean(values[i])) for i in sorted(values)}


def paired_test(diffs: Sequence[float] | np.ndarray | Mapping[str, float], seed: int = 0) -> Paired:
    """Bootstrap interval, Wilcoxon test and wins/losses of paired differences, one per independent image.

    Give it one value per image (a seed's differences, or :func:`mean_per_image` over seeds), never
    image-seed pairs pooled. A mapping of image id to difference is read in id order, so the same images
    give the same bootstrap draws however they were collected.
    """
    x = clean([diffs[k] for k in sorted(diffs)] if isinstance(diffs, Mapping) else diffs)
    lo, hi = bootstrap_ci(x, seed=seed)
    p, note = wilcoxon_p(x)
    if len(x) < 2 and not note:
        note = "n/a: too few images"
    return Paired(
        n=len(x),
        mean_diff=float(x.mean()) if len(x) else math.nan,
        ci_low=lo,
        ci_high=hi,
        p_value=p,
        note=note,
        wins=int((x > 0).sum()),
        losses=int((x < 0).sum()),
    )
