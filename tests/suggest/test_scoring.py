"""The informativeness of one candidate: uncertain tumour-like regions count, thin borders do not."""

from __future__ import annotations

import math

import numpy as np
import pytest

from teachseg.errors import ConfigError
from teachseg.suggest.scoring import ScoreSettings, score_members, uncertain_region

S = 64


def _disc(cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:S, :S]
    return np.hypot(yy - cy, xx - cx)


def confident_lesion_with_soft_border() -> np.ndarray:
    """Three views that agree on a confident disc and disagree only on its 2-px border."""
    d = _disc(32, 32, 14)
    views = []
    for shift in (-1.0, 0.0, 1.0):
        p = np.clip((14 + shift - d) / 2 + 0.5, 0, 1)  # a 2-px soft edge, moved by each view
        views.append(p)
    return np.stack(views).astype(np.float32)


def hesitant_region() -> np.ndarray:
    """Three views that disagree about a whole 20-px region (probabilities 0.3-0.7 inside it)."""
    inside = _disc(32, 32, 10) <= 10
    return np.stack([np.where(inside, v, 0.02) for v in (0.3, 0.5, 0.7)]).astype(np.float32)


def test_a_hesitant_region_outscores_the_soft_border_of_a_confident_lesion():
    settings = ScoreSettings()
    border = score_members(confident_lesion_with_soft_border(), settings)
    region = score_members(hesitant_region(), settings)
    assert border.uncertain_area == 0.0  # the opening removes the ring
    assert region.uncertain_area > 0.05
    assert region.informativeness(0.5) > 0.02 > border.informativeness(0.5) == 0.0


def test_without_the_opening_the_border_would_count():
    # the guard of the test above: the same ring is uncertain before the opening
    probs = confident_lesion_with_soft_border()
    ring = uncertain_region(probs.mean(0), (0.1, 0.9), 0)
    assert ring.sum() > 50
    assert score_members(probs, ScoreSettings(border_px=0)).informativeness(0.5) > 0.0


def test_uncertainty_is_the_spread_of_the_members_over_the_region():
    parts = score_members(hesitant_region(), ScoreSettings())
    assert parts.uncertainty == pytest.approx(np.std([0.3, 0.5, 0.7]), abs=1e-6)
    assert parts.informativeness(1.0) == pytest.approx(parts.uncertainty * parts.uncertain_area)
    assert parts.informativeness(0.0) == pytest.approx(parts.uncertainty)
    assert math.isnan(parts.disagreement)


def test_agreeing_members_score_zero_whatever_the_area():
    same = np.full((3, S, S), 0.5, np.float32)  # hesitant everywhere, but every view agrees
    parts = score_members(same, ScoreSettings())
    assert parts.uncertain_area > 0.99
    assert parts.informativeness(0.5) == 0.0


def test_teacher_student_disagreement_over_the_region():
    inside = _disc(32, 32, 10) <= 10
    teacher = [np.where(inside, 0.3, 0.0)] * 2
    student = [np.where(inside, 0.7, 0.0)] * 2
    parts = score_members(
        np.stack(teacher + student).astype(np.float32), ScoreSettings(), np.array([0, 0, 1, 1])
    )
    assert parts.disagreement == pytest.approx(0.4, abs=1e-6)
    assert parts.uncertainty == pytest.approx(0.2, abs=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [{"band": (0.9, 0.1)}, {"band": (-0.1, 0.5)}, {"border_px": -1}, {"diversity": -1.0}, {"flips": ("d",)}],
)
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ConfigError):
        ScoreSettings(**kwargs)
