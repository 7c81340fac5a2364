import numpy as np

from teachseg.data.synth_slide import SyntheticTissue
from teachseg.wsi.tissue import detect_tissue, otsu_threshold


def test_otsu_splits_two_modes():
    v = np.concatenate([np.full(100, 0.1), np.full(100, 0.7)])
    assert 0.1 < otsu_threshold(v) <= 0.7


def test_detects_synthetic_tissue():
    fields = SyntheticTissue(4096, 4096, tissue_fraction=0.4, seed=1)
    thumb = fields.render(16, 0, 0, 256, 256)
    truth = fields._field(fields.tissue, 16, 0, 0, 256, 256) > 0
    mask = detect_tissue(thumb, margin=0)
    agreement = (mask == truth).mean()
    assert agreement > 0.95, agreement


def test_blank_glass_has_no_tissue():
    rng = np.random.default_rng(0)
    glass = np.clip(rng.normal(238, 3, (200, 300, 3)), 0, 255).astype(np.uint8)
    assert not detect_tissue(glass).any()
    assert not detect_tissue(np.zeros((50, 50, 3), np.uint8)).any()
