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


# ---------------------------------------------------------------------------- masks are never images


def _mask01(path: Path, stem_value: int = 1) -> Path:
    """A 0/1 mask (the other common encoding beside 0/255)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    m = np.zeros((H, W), np.uint8)
    m[2:6, 3:9] = stem_value
    Image.fromarray(m).save(path)
    return path


def _photo(path: Path, seed: int = 0) -> Path:
    """A textured RGB image (many values), saved in the format of the suffix (.tif included)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def _busi_folder(root: Path) -> Path:
    for i in (1, 2):
        _photo(root / "benign" / f"benign ({i}).png", seed=i)
        _mask(root / "benign" / f"benign ({i})_mask.png", (slice(0, 4), slice(0, 4)))
    _mask(root / "benign" / "benign (2)_mask_1.png", (slice(6, 9), slice(6, 9)))
    _photo(root / "normal" / "normal (1).png", seed=9)
    _mask(root / "normal" / "normal (1)_mask.png")
    return root


def _is_mask_name(sample: Sample) -> bool:
    return "_mask" in sample.image.name or "masks" in sample.image.parts


@pytest.mark.parametrize("where", ["benign", "", "benign+normal"])
def test_unlabelled_dirs_at_a_busi_folder_yield_no_mask_as_image(tmp_path: Path, where: str) -> None:
    _img(tmp_path / "ds/images/a.png")
    _mask(tmp_path / "ds/masks/a.png")
    busi = _busi_folder(tmp_path / "busi")
    dirs = [busi / part for part in where.split("+")] if where else [busi]
    d = discover(tmp_path / "ds", unlabelled_dirs=dirs)
    extra = [s for s in d.samples if not s.id.startswith("images/")]
    assert extra and not any(_is_mask_name(s) for s in extra)
    assert all(not s.labelled for s in extra)
    names = sorted(s.image.name for s in extra)
    expected_images = {"benign": 2, "": 3, "benign+normal": 3}[where]
    assert len(names) == expected_images and all("_mask" not in n for n in names)
    assert d.masks_skipped == {"benign": 3, "": 4, "benign+normal": 4}[where]
    assert d.mask_like == []  # recognised as masks by name: skipped, not a risk


def test_unlabelled_dirs_skip_mask_folders_and_the_datasets_own_masks(tmp_path: Path) -> None:
    _photo(tmp_path / "ds/imgs/a.tif")
    _mask01(tmp_path / "ds/labels/a.png")
    _photo(tmp_path / "more/scans/u.png", seed=1)
    _mask(tmp_path / "more/masks/u.png")  # a folder named like masks
    _mask(tmp_path / "more/annot/v.png")  # a folder that holds masks by content
    d = discover(tmp_path / "ds", unlabelled_dirs=[tmp_path / "more"])
    assert [s.id for s in d.unlabelled] == ["more/scans/u.png"]
    assert d.masks_skipped == 1 and d.mask_like == [tmp_path / "more/annot/v.png"]
    # Pointing unlabelled_dirs at the dataset's own mask folder (any name) is refused: it holds no image.
    with pytest.raises(DataError, match="holds only masks") as err:
        discover(tmp_path / "ds", unlabelled_dirs=[tmp_path / "ds/labels"])
    assert "\n" not in str(err.value)


def test_mask_named_files_among_images_or_unlabelled_are_not_images(tmp_path: Path) -> None:
    _photo(tmp_path / "ds/images/a.png")
    _mask(tmp_path / "ds/masks/a.png")
    _mask(tmp_path / "ds/images/a_mask.png")  # a stray mask among the images
    _photo(tmp_path / "ds/unlabelled/u.png", seed=1)
    _mask(tmp_path / "ds/unlabelled/u_mask_1.png")
    _mask(tmp_path / "ds/unlabelled/masks/v.png")
    d = discover(tmp_path / "ds")
    assert [s.id for s in d.samples] == ["images/a.png", "unlabelled/u.png"]
    assert [p.relative_to(tmp_path / "ds").as_posix() for p in d.mask_like] == [
        "images/a_mask.png",
        "unlabelled/masks/v.png",
        "unlabelled/u_mask_1.png",
    ]
    # A folder of images only: an orphan *_mask file is no image either.
    _photo(tmp_path / "flat/b.png")
    _mask(tmp_path / "flat/c_mask.png")
    flat = discover(tmp_path / "flat")
    assert flat.layout == "unlabelled" and [s.id for s in flat.samples] == ["b.png"]
    assert flat.mask_like == [tmp_path / "flat/c_mask.png"]


@pytest.mark.skipif(not BUSI.exists(), reason="../shared/data/busi not present")
def test_unlabelled_dirs_at_the_real_busi_normal_folder(tmp_path: Path) -> None:
    _img(tmp_path / "images/a.png")
    _mask(tmp_path / "masks/a.png")
    d = discover(tmp_path, unlabelled_dirs=[BUSI / "normal"])
    extra = [s for s in d.unlabelled if s.id.startswith("normal/")]
    n_masks = sum(1 for p in (BUSI / "normal").iterdir() if "_mask" in p.name)
    assert len(extra) == 105 and d.masks_skipped == n_masks
    assert not any("_mask" in s.image.name for s in extra)


# --------------------------------------------------------------------------------- any folder names


@pytest.mark.parametrize(
    ("images", "masks"),
    [("imgs", "labels"), ("Images", "GT"), ("train_images", "train_masks"), ("scans", "annot")],
)
def test_image_and_mask_folders_of_any_name_are_found_automatically(
    tmp_path: Path, images: str, masks: str
) -> None:
    for i, name in enumerate(("a", "b", "c")):
        _photo(tmp_path / images / f"{name}.tif", seed=i)
    _mask01(tmp_path / masks / "a.png")
    _mask01(tmp_path / masks / "b_mask.png")  # c has no mask: unlabelled
    _photo(tmp_path / "unlabelled/u.png", seed=7)
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
        _photo(tmp_path / "ds/imgs" / f"{name}.tif", seed=i)
        _mask01(tmp_path / "ds/labels" / f"{name}.png")
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
    _photo(tmp_path / "a.tif")
    _photo(tmp_path / "b.tif", seed=1)
    _mask01(tmp_path / "labels/a.png")
    _photo(tmp_path / "unlabelled/u.png", seed=2)
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
        _photo(tmp_path / folder / "a.png")
    _mask01(tmp_path / "labels/a.png")
    with pytest.raises(DataError, match="will not guess") as err:
        discover(tmp_path)
    assert "data.images_dir" in str(err.value)


@pytest.mark.parametrize("masks", ["labels", "annot"])
def test_mask_folder_beside_images_without_pairing_is_reported_not_used(tmp_path: Path, masks: str) -> None:
    for i in range(3):
        _photo(tmp_path / "images" / f"case{i}.png", seed=i)
        _mask(tmp_path / masks / f"{i:04d}.png", (slice(0, 3 + i), slice(0, 4)))  # names match nothing
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
    _img(tmp_path / "images/a.png", value=120)  # one value, but not a mask's 0/1/255
    _img(tmp_path / "more/b.png", value=0)
    d = discover(tmp_path)
    assert [s.id for s in d.samples] == ["images/a.png"] and len(d.mask_like) == 1


# ------------------------------------------------------------------------------------ bad explicit input


def test_explicit_folders_missing_or_unmatched_give_one_line_naming_both(tmp_path: Path) -> None:
    _photo(tmp_path / "imgs/a.tif")
    _mask01(tmp_path / "labels/zz.png")
    cases = [
        (Path("nope"), Path("labels"), "images folder not found"),
        (Path("imgs"), Path("nolabels"), "masks folder not found"),
        (Path("imgs"), Path("labels"), "no image has a mask of the same name"),
    ]
    for images, masks, message in cases:
        with pytest.raises(DataError, match=message) as err:
            discover(tmp_path, images_dir=images, masks_dir=masks)
        text = str(err.value)
        assert "\n" not in text
        assert str(tmp_path / images) in text and str(tmp_path / masks) in text
        assert "data.images_dir" in text
    with pytest.raises(DataError, match="together"):
        discover(tmp_path, images_dir=Path("imgs"))
    with pytest.raises(DataError, match="the layout is 'busi'"):
        discover(tmp_path, layout="busi", images_dir=Path("imgs"), masks_dir=Path("labels"))


def test_config_needs_images_dir_and_masks_dir_together() -> None:
    from teachseg.config import build_config
    from teachseg.errors import ConfigError

    cfg = build_config({"data": {"images_dir": "imgs", "masks_dir": "labels"}})
    assert (cfg.data.images_dir, cfg.data.masks_dir) == (Path("imgs"), Path("labels"))
    with pytest.raises(ConfigError, match="together"):
        build_config({"data": {"images_dir": "imgs"}})
    with pytest.raises(ConfigError, match="layout"):
        build_config({"data": {"images_dir": "i", "masks_dir": "m", "layout": "busi"}})
