"""Dataset discovery: every layout, BUSI naming, problems, and the dataset check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from teachseg.data.discover import Sample, check_dataset, discover
from teachseg.errors import DataError

BUSI = Path(__file__).resolve().parents[2] / "../shared/data/busi"
H, W = 12, 14


def _img(path: Path, value: int = 120, shape: tuple[int, int] = (H, W)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*shape, 3), value, np.uint8)).save(path)
    return path


def _mask(path: Path, box: tuple[slice, slice] | None = None, shape: tuple[int, int] = (H, W)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    m = np.zeros(shape, np.uint8)
    if box is not None:
        m[box] = 255
    Image.fromarray(m).save(path)
    return path


# ------------------------------------------------------------------------------------------------ pairs


def test_pairs_layout_with_and_without_mask_suffix(tmp_path: Path) -> None:
    _img(tmp_path / "images/a.png")
    _img(tmp_path / "images/b.png")
    _img(tmp_path / "images/c.png")  # no mask: unlabelled
    _mask(tmp_path / "masks/a.png")
    _mask(tmp_path / "masks/b_mask.png")
    _img(tmp_path / "unlabelled/u1.jpg")
    _img(tmp_path / "unlabelled/.hidden.png")
    _img(tmp_path / "images/.teachseg-cache/x.png")

    d = discover(tmp_path)
    assert d.layout == "pairs"
    assert [s.id for s in d.samples] == ["images/a.png", "images/b.png", "images/c.png", "unlabelled/u1.jpg"]
    by_id = d.by_id()
    assert by_id["images/a.png"].masks == (tmp_path / "masks/a.png",)
    assert by_id["images/b.png"].masks == (tmp_path / "masks/b_mask.png",)
    assert [s.id for s in d.labelled] == ["images/a.png", "images/b.png"]
    assert [s.id for s in d.unlabelled] == ["images/c.png", "unlabelled/u1.jpg"]
    assert all(s.cls is None for s in d.samples)
    assert d.problems == []


def test_pairs_with_mat_masks_and_orphan_mask(tmp_path: Path) -> None:
    _img(tmp_path / "images/a.tif")
    (tmp_path / "masks").mkdir()
    scipy.io.savemat(tmp_path / "masks/a.mat", {"m": np.eye(3)})
    _mask(tmp_path / "masks/ghost.png")
    d = discover(tmp_path)
    assert d.layout == "pairs"
    assert d.samples == [Sample("images/a.tif", tmp_path / "images/a.tif", (tmp_path / "masks/a.mat",))]
    assert len(d.problems) == 1 and str(tmp_path / "masks/ghost.png") in d.problems[0]


def test_forced_pairs_without_masks_folder_errors(tmp_path: Path) -> None:
    _img(tmp_path / "images/a.png")
    with pytest.raises(DataError, match="masks/"):
        discover(tmp_path, layout="pairs")
    assert discover(tmp_path).layout == "unlabelled"


# ------------------------------------------------------------------------------------------------- busi


def test_busi_layout_classes_and_extra_masks(tmp_path: Path) -> None:
    for cls in ("benign", "malignant"):
        for i in (1, 2):
            _img(tmp_path / cls / f"{cls} ({i}).png")
            _mask(tmp_path / cls / f"{cls} ({i})_mask.png")
    _mask(tmp_path / "benign/benign (2)_mask_1.png")
    _mask(tmp_path / "benign/benign (2)_mask_2.png")
    _img(tmp_path / "benign/benign (3).png")  # image without mask

    d = discover(tmp_path)
    assert d.layout == "busi"
    assert len(d.samples) == 5 and len(d.labelled) == 4
    s = d.by_id()["benign/benign (2).png"]
    assert s.cls == "benign"
    assert [p.name for p in s.masks] == [
        "benign (2)_mask.png",
        "benign (2)_mask_1.png",
        "benign (2)_mask_2.png",
    ]
    assert d.by_id()["malignant/malignant (1).png"].cls == "malignant"
    assert not d.by_id()["benign/benign (3).png"].labelled


def test_busi_extra_masks_are_or_merged_by_check(tmp_path: Path) -> None:
    _img(tmp_path / "c/x.png")
    _mask(tmp_path / "c/x_mask.png", (slice(0, 2), slice(0, 2)))
    _mask(tmp_path / "c/x_mask_1.png", (slice(5, 8), slice(5, 8)))
    report = check_dataset(discover(tmp_path))
    assert report["extra_masks"] == 1
    assert report["mask_coverage"]["mean"] == pytest.approx((4 + 9) / (H * W))


def test_flat_folder_with_side_by_side_masks(tmp_path: Path) -> None:
    _img(tmp_path / "a.png")
    _mask(tmp_path / "a_mask.png")
    _img(tmp_path / "b.png")
    _mask(tmp_path / "orphan_mask.png")
    d = discover(tmp_path)
    assert d.layout == "busi"
    assert [(s.id, s.cls, s.labelled) for s in d.samples] == [("a.png", None, True), ("b.png", None, False)]
    assert len(d.problems) == 1 and "orphan_mask.png" in d.problems[0]


@pytest.mark.skipif(not BUSI.exists(), reason="../shared/data/busi not present")
def test_real_busi_folder() -> None:
    d = discover(BUSI)
    assert d.layout == "busi" and len(d.samples) == 612 and not d.unlabelled
    counts = {c: sum(s.cls == c for s in d.samples) for c in ("benign", "malignant", "normal")}
    assert counts == {"benign": 348, "malignant": 159, "normal": 105}
    assert sum(len(s.masks) > 1 for s in d.samples) == 16
    assert d.problems == []
    names = [p.name for p in d.by_id()["benign/benign (195).png"].masks]
    assert names == ["benign (195)_mask.png", "benign (195)_mask_1.png", "benign (195)_mask_2.png"]
    report = check_dataset(d)
    assert report["problems"] == [] and report["extra_masks"] == 16
    assert report["mask_coverage"]["empty"] == 105  # BUSI's normal images have all-zero masks
    assert report["image_size"]["height"]["max"] <= 320 and report["image_size"]["width"]["max"] <= 320


# ------------------------------------------------------------------------------------------- unlabelled


def test_unlabelled_layout_and_extra_dirs(tmp_path: Path) -> None:
    root = tmp_path / "data"
    _img(root / "x.png")
    _img(root / "sub/y.bmp")
    (root / "notes.txt").write_text("not an image")
    extra = tmp_path / "more"
    _img(extra / "x.png")
    d = discover(root, unlabelled_dirs=[extra, root / "sub"])
    assert d.layout == "unlabelled"
    # root/sub is already part of the dataset: not added twice
    assert [s.id for s in d.samples] == ["more/x.png", "sub/y.bmp", "x.png"]
    assert not d.labelled


def test_unlabelled_dirs_ids_stay_unique(tmp_path: Path) -> None:
    _img(tmp_path / "ds/images/a.png")
    _mask(tmp_path / "ds/masks/a.png")
    _img(tmp_path / "one/images/a.png")
    _img(tmp_path / "two/images/a.png")
    d = discover(tmp_path / "ds", unlabelled_dirs=[tmp_path / "one/images", tmp_path / "two/images"])
    ids = [s.id for s in d.samples]
    assert len(ids) == len(set(ids)) == 3


# --------------------------------------------------------------------------------------------- problems


def test_missing_root_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="dataset folder not found") as err:
        discover(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(err.value)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty/readme.txt").write_text("x")
    with pytest.raises(DataError) as err:
        discover(tmp_path / "empty")
    assert str(tmp_path / "empty") in str(err.value) and ".png" in str(err.value) and ".tif" in str(err.value)
    with pytest.raises(DataError, match="unlabelled image folder not found"):
        _img(tmp_path / "ok/a.png")
        discover(tmp_path / "ok", unlabelled_dirs=[tmp_path / "missing"])


def test_check_dataset_counts_sizes_and_problems(tmp_path: Path) -> None:
    _img(tmp_path / "images/a.png")
    _mask(tmp_path / "masks/a.png", (slice(0, 6), slice(0, 7)))  # 42 of 168 px
    _img(tmp_path / "images/b.png", shape=(20, 30))
    _mask(tmp_path / "masks/b.png", shape=(20, 30))  # empty mask
    _img(tmp_path / "images/c.png")
    _mask(tmp_path / "masks/c.png", shape=(5, 5))  # wrong size
    (tmp_path / "images/d.png").write_bytes(b"garbage")
    _img(tmp_path / "unlabelled/u.png", shape=(8, 8))

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
    _img(tmp_path / "images/a.png")
    _img(tmp_path / "images/b.png")
    mask = np.zeros((H, W))
    mask[:3, :4] = 1
    (tmp_path / "masks").mkdir()
    scipy.io.savemat(tmp_path / "masks/a.mat", {"gt": mask, "other": np.ones((H, W))})
    scipy.io.savemat(tmp_path / "masks/b.mat", {"vol": np.zeros((2, 2, 2))})
    report = check_dataset(discover(tmp_path), mat_variable="gt")
    assert report["mask_coverage"]["mean"] == pytest.approx(12 / (H * W))
    assert len(report["problems"]) == 1 and "b.mat" in report["problems"][0]
    assert "'gt' not found" in report["problems"][0] and "vol 2x2x2" in report["problems"][0]
