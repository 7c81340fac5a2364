"""The folder layouts: image/mask folder pairs of any name, BUSI naming, ``.mat`` masks, orphan masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from teachseg.data.check import check_dataset
from teachseg.data.discover import discover
from teachseg.data.records import Sample
from teachseg.errors import DataError
from tests.data.dataset_files import BUSI, H, W, write_image, write_mask, write_mask01, write_photo

# ------------------------------------------------------------------------------------------------ pairs


def test_pairs_layout_with_and_without_mask_suffix(tmp_path: Path) -> None:
    write_image(tmp_path / "images/a.png")
    write_image(tmp_path / "images/b.png")
    write_image(tmp_path / "images/c.png")  # no mask: unlabelled
    write_mask(tmp_path / "masks/a.png")
    write_mask(tmp_path / "masks/b_mask.png")
    write_image(tmp_path / "unlabelled/u1.jpg")
    write_image(tmp_path / "unlabelled/.hidden.png")
    write_image(tmp_path / "images/.teachseg-cache/x.png")

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
    write_image(tmp_path / "images/a.tif")
    (tmp_path / "masks").mkdir()
    scipy.io.savemat(tmp_path / "masks/a.mat", {"m": np.eye(3)})
    write_mask(tmp_path / "masks/ghost.png")
    d = discover(tmp_path)
    assert d.layout == "pairs"
    assert d.samples == [Sample("images/a.tif", tmp_path / "images/a.tif", (tmp_path / "masks/a.mat",))]
    assert len(d.problems) == 1 and str(tmp_path / "masks/ghost.png") in d.problems[0]


def test_forced_pairs_without_masks_folder_errors(tmp_path: Path) -> None:
    write_image(tmp_path / "images/a.png")
    with pytest.raises(DataError, match="masks/"):
        discover(tmp_path, layout="pairs")
    assert discover(tmp_path).layout == "unlabelled"


# ------------------------------------------------------------------------------------------------- busi


def test_busi_layout_classes_and_extra_masks(tmp_path: Path) -> None:
    for cls in ("benign", "malignant"):
        for i in (1, 2):
            write_image(tmp_path / cls / f"{cls} ({i}).png")
            write_mask(tmp_path / cls / f"{cls} ({i})_mask.png")
    write_mask(tmp_path / "benign/benign (2)_mask_1.png")
    write_mask(tmp_path / "benign/benign (2)_mask_2.png")
    write_image(tmp_path / "benign/benign (3).png")  # image without mask

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


def test_flat_folder_with_side_by_side_masks(tmp_path: Path) -> None:
    write_image(tmp_path / "a.png")
    write_mask(tmp_path / "a_mask.png")
    write_image(tmp_path / "b.png")
    write_mask(tmp_path / "orphan_mask.png")
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


# --------------------------------------------------------------------------------- any folder names


@pytest.mark.parametrize(
    ("images", "masks"),
    [("imgs", "labels"), ("Images", "GT"), ("train_images", "train_masks"), ("scans", "annot")],
)
def test_image_and_mask_folders_of_any_name_are_found_automatically(
    tmp_path: Path, images: str, masks: str
) -> None:
    for i, name in enumerate(("a", "b", "c")):
        write_photo(tmp_path / images / f"{name}.tif", seed=i)
    write_mask01(tmp_path / masks / "a.png")
    write_mask01(tmp_path / masks / "b_mask.png")  # c has no mask: unlabelled
    write_photo(tmp_path / "unlabelled/u.png", seed=7)
    d = discover(tmp_path)
    assert d.layout == "pairs"
    assert (d.images_dir, d.masks_dir) == (tmp_path / images, tmp_path / masks)
    assert f"{images}/ + {masks}/" in d.reason and "2 of 2 masks" in d.reason
    assert [(s.id, [p.name for p in s.masks]) for s in d.samples] == [
        (f"{images}/a.tif", ["a.png"]),
        (f"{images}/b.tif", ["b_mask.png"]),
        (f"{images}/c.tif", []),
        ("unlabelled/u.png", []),
    ]
    assert d.problems == [] and d.mask_like == []
    report = check_dataset(d)
    assert report["problems"] == [] and report["risks"] == []
    assert report["mask_coverage"]["mean"] == pytest.approx(24 / (H * W))  # 0/1 masks: 1 is tumour


def test_tif_images_with_01_png_masks_given_explicitly(tmp_path: Path) -> None:
    for i, name in enumerate(("a", "b")):
        write_photo(tmp_path / "ds/imgs" / f"{name}.tif", seed=i)
        write_mask01(tmp_path / "ds/labels" / f"{name}.png")
    auto = discover(tmp_path / "ds")
    explicit = discover(tmp_path / "ds", images_dir=Path("imgs"), masks_dir=Path("labels"))
    absolute = discover(
        tmp_path / "ds", layout="pairs", images_dir=tmp_path / "ds/imgs", masks_dir=tmp_path / "ds/labels"
    )
    assert auto.samples == explicit.samples == absolute.samples
    assert len(explicit.labelled) == 2 and explicit.reason.startswith("folders set")
    # Folders outside the dataset folder work too; the ids keep the folder's name.
    elsewhere = discover(tmp_path, images_dir=tmp_path / "ds/imgs", masks_dir=tmp_path / "ds/labels")
    assert [s.id for s in elsewhere.labelled] == ["ds/imgs/a.tif", "ds/imgs/b.tif"]


def test_explicit_images_dir_may_hold_the_masks_dir(tmp_path: Path) -> None:
    write_photo(tmp_path / "a.tif")
    write_photo(tmp_path / "b.tif", seed=1)
    write_mask01(tmp_path / "labels/a.png")
    write_photo(tmp_path / "unlabelled/u.png", seed=2)
    d = discover(tmp_path, images_dir=Path("."), masks_dir=Path("labels"))
    assert [(s.id, s.labelled) for s in d.samples] == [
        ("a.tif", True),
        ("b.tif", False),
        ("unlabelled/u.png", False),
    ]
    with pytest.raises(DataError, match="one folder"):
        discover(tmp_path, images_dir=Path("labels"), masks_dir=Path("labels"))


def test_two_candidate_folder_pairs_are_not_guessed(tmp_path: Path) -> None:
    for folder in ("imgs", "scans"):
        write_photo(tmp_path / folder / "a.png")
    write_mask01(tmp_path / "labels/a.png")
    with pytest.raises(DataError, match="will not guess") as err:
        discover(tmp_path)
    assert "data.images_dir" in str(err.value)


@pytest.mark.parametrize("masks", ["labels", "annot"])
def test_mask_folder_beside_images_without_pairing_is_reported_not_used(tmp_path: Path, masks: str) -> None:
    for i in range(3):
        write_photo(tmp_path / "images" / f"case{i}.png", seed=i)
        write_mask(tmp_path / masks / f"{i:04d}.png", (slice(0, 3 + i), slice(0, 4)))  # names match nothing
    d = discover(tmp_path)
    assert d.layout == "unlabelled"
    assert [s.id for s in d.samples] == [f"images/case{i}.png" for i in range(3)]  # no mask as an image
    assert d.mask_like == [tmp_path / masks / f"{i:04d}.png" for i in range(3)]
    report = check_dataset(d)
    assert "3 files look like masks; set data.masks_dir" in report["risks"]
    assert report["mask_like"]["folders"] == {str(tmp_path / masks): 3}
    # Training never sees them: its split (split.json) holds the discovered images alone.
    from teachseg.config import build_config
    from teachseg.training.prepare import prepare_data

    cfg = build_config({"data": {"root": str(tmp_path), "val_fraction": 0.0, "duplicates": "off"}})
    (tmp_path / "run").mkdir()
    split = prepare_data(cfg, tmp_path / "run", need_labels=False).split
    assert sorted(split.unlabelled) == [f"images/case{i}.png" for i in range(3)]


def test_flat_grey_images_are_not_taken_for_masks(tmp_path: Path) -> None:
    write_image(tmp_path / "images/a.png", value=120)  # one value, but not a mask's 0/1/255
    write_image(tmp_path / "more/b.png", value=0)
    d = discover(tmp_path)
    assert [s.id for s in d.samples] == ["images/a.png"] and len(d.mask_like) == 1
