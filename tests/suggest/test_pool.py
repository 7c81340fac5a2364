"""Hygiene: the ranking never returns held-out images, their groups, or duplicates of images with masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from teachseg.errors import DataError
from teachseg.suggest import pool as pool_mod
from teachseg.suggest.rank import suggest_images
from teachseg.suggest.source import open_source
from tests.suggest.runs import blob_image, make_dataset, make_run, save, save_model


def near_copy(src: Path, dst: Path) -> Path:
    """The same picture re-exported: resized to 70% and saved as JPEG (a near duplicate, other pixels)."""
    im = Image.open(src).convert("RGB")
    dst.parent.mkdir(parents=True, exist_ok=True)
    im.resize((round(im.width * 0.7), round(im.height * 0.7))).save(dst.with_suffix(".jpg"), quality=80)
    return dst.with_suffix(".jpg")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run with 10 masked images (2 val, 2 test) and 8 unlabelled, plus in ``unlabelled/`` a re-exported
    copy of a training image (so the split puts it in the training group and the unlabelled pool)."""
    tmp = tmp_path_factory.mktemp("hygiene")
    root = make_dataset(tmp / "data")
    first = make_run(tmp / "probe", root)  # the split does not depend on unlabelled images
    train0 = root / first.split["train"][0]
    near_copy(train0, root / "unlabelled" / "z_near_train.png")
    return make_run(tmp / "run", root)


@pytest.fixture(scope="module")
def extra(run, tmp_path_factory):
    """A folder to rank against the run: exact copies of a validation and a test image, a re-export of a
    training image, and four new images."""
    folder = tmp_path_factory.mktemp("extra") / "more"
    save(folder / "val_copy.png", np.asarray(Image.open(run.root / run.split["val"][0]).convert("RGB")))
    save(folder / "test_copy.png", np.asarray(Image.open(run.root / run.split["test"][0]).convert("RGB")))
    near_copy(run.root / run.split["train"][1], folder / "train_near.png")
    for i in range(4):
        save(folder / f"new{i}.png", blob_image(500 + i)[0])
    return folder


def test_the_run_pool_leaves_out_duplicates_of_masked_images(run):
    assert "unlabelled/z_near_train.jpg" in run.split["unlabelled"]  # the split left it in
    pool = pool_mod.run_pool(open_source(run.path))
    ids = {s.id for s in pool.candidates}
    assert "unlabelled/z_near_train.jpg" not in ids
    assert pool.excluded == {pool_mod.DUP_MASKED: ["unlabelled/z_near_train.jpg"]}
    assert ids == set(run.split["unlabelled"]) - {"unlabelled/z_near_train.jpg"}
    assert len(pool.anchors) == len(run.split["train"])


def test_inputs_are_checked_against_the_run(run, extra):
    pool = pool_mod.run_pool(open_source(run.path), [extra])
    names = {Path(s.id).name for s in pool.candidates}
    assert names == {f"new{i}.png" for i in range(4)}
    left = {reason: {Path(i).name for i in ids} for reason, ids in pool.excluded.items()}
    assert left == {
        pool_mod.DUP_HELD_OUT: {"val_copy.png", "test_copy.png"},
        pool_mod.DUP_MASKED: {"train_near.jpg"},
    }


def test_the_ranking_never_returns_an_excluded_image(run, extra, tmp_path):
    pool = pool_mod.run_pool(open_source(run.path), [extra])
    chosen = suggest_images(open_source(run.path), [extra], len(pool.candidates), tmp_path / "out")
    returned = {s.id for s in chosen}
    assert returned == {s.id for s in pool.candidates}
    excluded = {i for ids in pool.excluded.values() for i in ids}
    assert not returned & excluded
    held = {str(run.root / i) for i in run.held_out}
    assert not {str(s.image) for s in chosen} & held


def test_images_of_a_held_out_patient_are_left_out(tmp_path):
    root = make_dataset(tmp_path / "data", n_labelled=0, n_unlabelled=0)
    for p in range(6):
        for k in range(2):
            img, mask = blob_image(10 * p + k)
            save(root / "images" / f"p{p}_{k}.png", img)
            save(root / "masks" / f"p{p}_{k}.png", mask)
    save(root / "unlabelled" / "p9_0.png", blob_image(99)[0])
    run = make_run(tmp_path / "run", root, group_regex=r"^(p\d+)_")
    held_patient = run.split["val"][0].split("/")[1].split("_")[0]
    folder = tmp_path / "new"
    save(folder / f"{held_patient}_7.png", blob_image(700)[0])  # a new image of a validation patient
    save(folder / "p8_0.png", blob_image(701)[0])
    pool = pool_mod.run_pool(open_source(run.path), [folder])
    assert [Path(s.id).name for s in pool.candidates] == ["p8_0.png"]
    assert {Path(i).name for i in pool.excluded[pool_mod.HELD_OUT_GROUP]} == {f"{held_patient}_7.png"}


def test_a_model_folder_leaves_out_the_files_it_trained_on(tmp_path):
    from teachseg.training.identity import file_sha256

    folder = make_dataset(tmp_path / "imgs", n_labelled=2, n_unlabelled=5)
    seen = {"images": [file_sha256(folder / "unlabelled" / "u00.png")], "masks": [], "val_images": []}
    model = save_model(tmp_path / "model", trained_on=seen)
    pool = pool_mod.model_pool(open_source(model), [folder])
    assert {Path(i).name for i in pool.excluded[pool_mod.MODEL_TRAINED]} == {"u00.png"}
    assert len(pool.candidates) == 4
    assert any("near-duplicates cannot be checked" in n for n in pool.notes)


def test_a_run_without_unlabelled_images_is_a_clear_error(tmp_path):
    root = make_dataset(tmp_path / "data", n_unlabelled=0)
    run = make_run(tmp_path / "run", root)
    with pytest.raises(DataError, match="no unlabelled images to suggest"):
        pool_mod.run_pool(open_source(run.path))
