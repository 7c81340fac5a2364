from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from teachseg.reports.stats import (
    bootstrap_ci,
    image_diffs,
    mean_per_image,
    paired_diffs,
    paired_test,
    summarize,
    wilcoxon_p,
)


def test_summarize_matches_t_interval():
    x = [0.9432, 0.9425, 0.9454]
    s = summarize(x)
    lo, hi = sps.t.interval(0.95, 2, loc=np.mean(x), scale=sps.sem(x))
    assert s.n == 3
    assert s.mean == pytest.approx(np.mean(x))
    assert s.sd == pytest.approx(np.std(x, ddof=1))
    assert (s.ci_low, s.ci_high) == pytest.approx((lo, hi))


def test_summarize_drops_missing_and_handles_small_n():
    assert summarize([None, float("nan"), "x"]).n == 0
    one = summarize([0.5, None])
    assert one.n == 1 and one.mean == 0.5 and math.isnan(one.sd) and math.isnan(one.ci_low)


def test_bootstrap_is_seeded_and_brackets_the_mean():
    rng = np.random.default_rng(1)
    d = rng.normal(0.03, 0.05, 40)
    a, b = bootstrap_ci(d), bootstrap_ci(d)
    assert a == b
    assert a[0] < d.mean() < a[1]
    assert all(math.isnan(v) for v in bootstrap_ci([0.1]))


@pytest.mark.parametrize(
    ("diffs", "reason"),
    [([], "0 paired"), ([0.2], "1 paired"), ([0.0, 0.0, 0.0], "all differences are zero")],
)
def test_wilcoxon_not_applicable_says_why(diffs, reason):
    p, note = wilcoxon_p(diffs)
    assert p is None and note.startswith("n/a") and reason in note


def test_wilcoxon_detects_a_shift():
    d = np.linspace(0.01, 0.1, 20)
    p, note = wilcoxon_p(d)
    assert p is not None and p < 0.001 and note == ""


def test_paired_diffs_match_ids_and_skip_missing():
    t = [{"id": "a", "dice": 0.5}, {"id": "b", "dice": 0.7}, {"id": "c", "dice": float("nan")}]
    s = [
        {"id": "b", "dice": 0.8},
        {"id": "a", "dice": 0.4},
        {"id": "c", "dice": 0.9},
        {"id": "z", "dice": 1.0},
    ]
    assert sorted(paired_diffs(t, s).round(6).tolist()) == [-0.1, 0.1]
    res = paired_test(paired_diffs(t, s))
    assert res.n == 2 and res.wins == 1 and res.losses == 1


def _diffs(seed: int, ids: list[str]) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    teacher = [{"id": i, "dice": float(rng.uniform(0.5, 0.9))} for i in ids]
    student = [{"id": r["id"], "dice": r["dice"] + float(rng.normal(0.02, 0.05))} for r in teacher]
    return image_diffs(teacher, student)


def test_identical_seeds_give_the_statistics_of_one_seed():
    ids = [f"img{i:02d}" for i in range(25)]
    one = _diffs(3, ids)
    repeated = paired_test(mean_per_image([one, one, one]))
    assert repeated == paired_test(mean_per_image([one])) == paired_test(one)
    assert repeated.n == len(ids)
    # pooling image-seed pairs (what the report used to do) pretends to have three times the images
    pooled = paired_test([*one.values()] * 3)
    assert pooled.n == 3 * len(ids) and pooled.ci_high - pooled.ci_low < repeated.ci_high - repeated.ci_low


def test_mean_per_image_counts_distinct_images():
    per_seed = [{"a": 0.1, "b": 0.3}, {"a": 0.3, "c": -0.1}, {"b": float("nan"), "c": 0.1}]
    means = mean_per_image(per_seed)
    assert list(means) == ["a", "b", "c"]
    assert means == pytest.approx({"a": 0.2, "b": 0.3, "c": 0.0})
    assert paired_test(means).n == 3


def test_paired_test_reads_a_mapping_in_id_order():
    d = _diffs(5, [f"x{i}" for i in range(12)])
    shuffled = dict(reversed(list(d.items())))
    assert paired_test(shuffled) == paired_test(d)
