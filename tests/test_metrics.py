"""Dice/Jaccard at threshold 0.5: empty cases, exact overlaps, pooled vs per-image, per-class summary."""

from __future__ import annotations

import math

import numpy as np
import pytest

from teachseg.metrics import image_scores, pooled, summarise


def _mask(shape: tuple[int, int], rows: slice, cols: slice) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[rows, cols] = True
    return m


def test_both_empty_is_perfect_and_precision_recall_are_undefined() -> None:
    s = image_scores(np.zeros((8, 8), np.float32), np.zeros((8, 8), bool))
    assert (s.dice, s.jaccard) == (1.0, 1.0)
    assert math.isnan(s.precision) and math.isnan(s.recall)


def test_one_empty_is_zero() -> None:
    gt = _mask((8, 8), slice(0, 2), slice(0, 2))
    missed = image_scores(np.zeros((8, 8), np.float32), gt)
    assert missed.dice == 0.0 and missed.jaccard == 0.0 and missed.recall == 0.0
    assert math.isnan(missed.precision)  # no predicted pixel: precision is undefined, not 0
    false_alarm = image_scores(gt.astype(np.float32), np.zeros((8, 8), bool))
    assert false_alarm.dice == 0.0 and false_alarm.jaccard == 0.0 and false_alarm.precision == 0.0
    assert math.isnan(false_alarm.recall)  # no tumour pixel: recall is undefined, not 0


def test_known_overlap_gives_exact_scores() -> None:
    gt = _mask((10, 10), slice(0, 4), slice(0, 10))  # 40 pixels
    pred = _mask((10, 10), slice(2, 6), slice(0, 10)).astype(np.float32)  # 40 pixels, 20 shared
    s = image_scores(pred, gt)
    assert (s.tp, s.fp, s.fn) == (20, 20, 20)
    assert s.dice == pytest.approx(0.5)
    assert s.jaccard == pytest.approx(1 / 3)
    assert s.precision == pytest.approx(0.5) and s.recall == pytest.approx(0.5)


def test_threshold_is_half() -> None:
    gt = np.ones((1, 4), bool)
    prob = np.array([[0.49, 0.51, 0.9, 0.1]], np.float32)
    s = image_scores(prob, gt)
    assert (s.tp, s.fn) == (2, 2)
    assert image_scores(prob, gt, threshold=0.05).tp == 4


def test_size_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="differ in size"):
        image_scores(np.zeros((4, 4)), np.zeros((4, 5), bool))


def test_pooled_differs_from_mean_per_image() -> None:
    big_gt = _mask((10, 10), slice(0, 10), slice(0, 10))
    big = image_scores(big_gt.astype(np.float32), big_gt)  # perfect, 100 pixels
    small_gt = _mask((10, 10), slice(0, 1), slice(0, 2))
    small = image_scores(np.zeros((10, 10), np.float32), small_gt)  # missed, 2 pixels
    pool = pooled([big, small])
    assert pool.dice == pytest.approx(200 / 202)
    summary = summarise([big, small])
    assert summary["n"] == 2
    assert summary["dice"] == pytest.approx(0.5)
    assert summary["pooled_dice"] == pytest.approx(200 / 202)
    assert summary["jaccard"] == pytest.approx(0.5)


def test_per_class_summary() -> None:
    gt = _mask((4, 4), slice(0, 2), slice(0, 4))
    perfect = image_scores(gt.astype(np.float32), gt)
    missed = image_scores(np.zeros((4, 4), np.float32), gt)
    empty_ok = image_scores(np.zeros((4, 4), np.float32), np.zeros((4, 4), bool))
    out = summarise([perfect, missed, empty_ok], ["malignant", "malignant", "normal"])
    per_class = out["per_class"]
    assert per_class["malignant"] == {"n": 2, "dice": 0.5, "jaccard": 0.5}
    assert per_class["normal"] == {"n": 1, "dice": 1.0, "jaccard": 1.0}
    assert "per_class" not in summarise([perfect], [None])
    assert summarise([]) == {"n": 0}


def test_summary_averages_precision_and_recall_over_the_images_where_they_are_defined() -> None:
    gt = _mask((4, 4), slice(0, 2), slice(0, 4))  # 8 pixels
    half = _mask((4, 4), slice(0, 1), slice(0, 4)).astype(np.float32)  # 4 pixels, all right
    good = image_scores(half, gt)  # precision 1, recall 0.5
    missed = image_scores(np.zeros((4, 4), np.float32), gt)  # precision undefined, recall 0
    false_alarm = image_scores(gt.astype(np.float32), np.zeros((4, 4), bool))  # precision 0, recall undefined
    empty_ok = image_scores(np.zeros((4, 4), np.float32), np.zeros((4, 4), bool))  # both undefined
    out = summarise([good, missed, false_alarm, empty_ok])
    assert out["precision"] == pytest.approx((1 + 0) / 2)
    assert out["recall"] == pytest.approx((0.5 + 0) / 2)
    assert out["dice"] == pytest.approx((2 / 3 + 0 + 0 + 1) / 4)
    # undefined everywhere: NaN, without a warning
    none = summarise([empty_ok, empty_ok])
    assert math.isnan(none["precision"]) and math.isnan(none["recall"])
    assert math.isnan(none["pooled_precision"]) and none["pooled_dice"] == 1.0
