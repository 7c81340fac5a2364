"""The synthetic H&E-like generator: seeded, complete, and carrying a learnable signal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

from teachseg.data.discover import discover
from teachseg.data.imageio import read_image
from teachseg.data.masks import read_mask
from teachseg.data.synth import generate, make_tile
from teachseg.errors import OutputError


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("s") / "synth", n_labelled=6, n_unlabelled=3, size=64, seed=7)


def test_layout_counts_and_readme(synth_dir: Path) -> None:
    d = discover(synth_dir)
    assert d.layout == "pairs" and d.problems == []
    assert len(d.labelled) == 6 and len(d.unlabelled) == 3
    assert all(s.id.startswith("unlabelled/") for s in d.unlabelled)
    assert "SYNTHETIC" in (synth_dir / "README.txt").read_text()
    image = read_image(d.labelled[0].image)
    assert image.shape == (64, 64, 3)
    assert read_mask(d.labelled[0].masks, expected_shape=(64, 64)).shape == (64, 64)


def test_same_seed_is_byte_identical_and_seeds_differ(synth_dir: Path, tmp_path: Path) -> None:
    again = generate(tmp_path / "again", n_labelled=6, n_unlabelled=3, size=64, seed=7)
    assert _files(again) == _files(synth_dir)
    other = generate(tmp_path / "other", n_labelled=6, n_unlabelled=3, size=64, seed=8)
    assert _files(other)["images/synth_000.png"] != _files(synth_dir)["images/synth_000.png"]


def test_masks_cover_sensible_shares() -> None:
    coverage = []
    for i in range(30):
        image, mask = make_tile(96, np.random.default_rng([0, 0, i]))
        assert image.dtype == np.uint8 and image.shape == (96, 96, 3) and mask.dtype == bool
        coverage.append(mask.mean())
    coverage_arr = np.array(coverage)
    tumour = coverage_arr[coverage_arr > 0]
    assert 1 <= (coverage_arr == 0).sum() <= 12  # some tiles without tumour, most with
    assert tumour.min() >= 0.02 and tumour.max() <= 0.6
    assert 0.1 <= tumour.mean() <= 0.4


def test_looks_like_he_and_tumour_is_separable() -> None:
    """Pink stroma, purple nuclei, and a tumour that a crude nuclear-density filter already finds."""
    dice = []
    for i in range(12):
        image, mask = make_tile(96, np.random.default_rng([1, 0, i]))
        rgb = image.reshape(-1, 3).astype(float)
        # H&E: both stains absorb green most; haematoxylin-dark nuclei are purple (blue above red)
        assert rgb[:, 1].mean() < min(rgb[:, 0].mean(), rgb[:, 2].mean())
        nuclei = rgb[rgb.mean(1) < 130]
        assert len(nuclei) and nuclei[:, 2].mean() > nuclei[:, 0].mean()
        if not mask.any():
            continue
        density = ndi.gaussian_filter((image.mean(-1) < 150).astype(float), 4)
        guess = density > 0.25
        dice.append(2 * (guess & mask).sum() / (guess.sum() + mask.sum()))
    assert np.mean(dice) > 0.65


def test_refuses_to_replace_unrelated_folder(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine/thesis.tex").write_text("important")
    with pytest.raises(OutputError, match="not empty"):
        generate(tmp_path / "mine", n_labelled=1, n_unlabelled=0, size=32)
    assert (tmp_path / "mine/thesis.tex").read_text() == "important"


def test_regenerating_replaces_an_earlier_synthetic_set(tmp_path: Path) -> None:
    root = generate(tmp_path / "s", n_labelled=3, n_unlabelled=2, size=32)
    generate(root, n_labelled=1, n_unlabelled=1, size=32)
    assert sorted(_files(root)) == [
        "README.txt",
        "images/synth_000.png",
        "masks/synth_000.png",
        "unlabelled/synth_u000.png",
    ]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folders left
