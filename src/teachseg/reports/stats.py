"""Summary statistics for the report: mean +/- SD with a t-based 95% interval, paired bootstrap, Wilcoxon."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

N_BOOTSTRAP = 5000


@dataclass(frozen=True)
class Summary:
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


def paired_diffs(
    teacher: Sequence[dict[str, Any]], student: Sequence[dict[str, Any]], metric: str = "dice"
) -> np.ndarray:
    """Per-image ``student - teacher`` for images present (with a finite value) in both."""
    t = {r["id"]: r.get(metric) for r in teacher if r.get("id") is not None}
    diffs = []
    for r in student:
        i = r.get("id")
        if i in t:
            a, b = clean([t[i]]), clean([r.get(metric)])
            if len(a) and len(b):
                diffs.append(b[0] - a[0])
    return np.asarray(diffs, dtype=float)


def paired_test(diffs: Sequence[float] | np.ndarray, seed: int = 0) -> Paired:
    x = clean(diffs)
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
