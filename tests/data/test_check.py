"""The ``data check`` summary: sizes, mask coverage, extra masks, ``.mat`` masks and the problems it lists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from teachseg.data.check import check_dataset
from teachseg.data.discover import discover
from tests.data.dataset_files import H, W, write_image, write_mask


def test_busi_extra_masks_are_or_merged_by_check(tmp_path: Path) -> None:
    write_image(tmp_path / "c/x.png")
    write_mask(tmp_path / "c/x_mask.png", (slice(0, 2), slice(0, 2)))
    write_mask(tmp_path / "c/x_mask_1.png", (slice(5, 8), slice(5, 8)))
    report = check_dataset(discover(tmp_path))
    assert report["extra_masks"] == 1
    assert report["mask_coverage"]["mean"] == pytest.approx((4 + 9) / (H * W))


def test_check_dataset_counts_sizes_and_problems(tmp_path: Path) -> None:
    write_image(tmp_path / "images/a.png")
    write_mask(tmp_path / "masks/a.png", (slice(0, 6), slice(0, 7)))  # 42 of 168 px
    write_image(tmp_path / "images/b.png", shape=(20, 30))
    write_mask(tmp_path / "masks/b.png", shape=(20, 30))  # empty mask
    write_image(tmp_path / "images/c.png")
    write_mask(tmp_path / "masks/c.png", shape=(5, 5))  # wrong size
    (tmp_path / "images/d.png").write_bytes(b"garbage")
    write_image(tmp_path / "unlabelled/u.png", shape=(8, 8))

    report = check_dataset(discover(tmp_path))
    assert report["layout"] == "pairs"
    assert (report["pairs"], report["unlabelled"]) == (3, 2)
    assert report["image_size"] == {
        "height": {"min": 8, "median": 12, "max": 20},
        "width": {"min": 8, "median": 14, "max": 30},
    }
    assert report["mask_coverage"]["mean"] == pytest.approx((42 / 168 + 0) / 2)
    assert report["mask_coverage"]["empty"] == 1
    problems = report["problems"]
    assert len(problems) == 2
    assert any("masks/c.png" in p and "does not match" in p for p in problems)
    assert any("images/d.png" in p for p in problems)


def test_check_dataset_mat_masks(tmp_path: Path) -> None:
    write_image(tmp_path / "images/a.png")
    write_image(tmp_path / "images/b.png")
    mask = np.zeros((H, W))
    mask[:3, :4] = 1
    (tmp_path / "masks").mkdir()
    scipy.io.savemat(tmp_path / "masks/a.mat", {"gt": mask, "other": np.ones((H, W))})
    scipy.io.savemat(tmp_path / "masks/b.mat", {"vol": np.zeros((2, 2, 2))})
    report = check_dataset(discover(tmp_path), mat_variable="gt")
    assert report["mask_coverage"]["mean"] == pytest.approx(12 / (H * W))
    assert len(report["problems"]) == 1 and "b.mat" in report["problems"][0]
    assert "'gt' not found" in report["problems"][0] and "vol 2x2x2" in report["problems"][0]
