"""Ranking end to end: deterministic, diverse, Teacher-Student aware, and refusing a model that does not match."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from teachseg.errors import DataError, ModelError
from teachseg.suggest import members as members_mod
from teachseg.suggest.members import MemberOutput
from teachseg.suggest.outputs import CONTACT_SHEET, SUGGEST_JSON, SUGGESTIONS_CSV, read_suggestions
from teachseg.suggest.rank import suggest_images
from teachseg.suggest.scoring import ScoreSettings
from teachseg.suggest.source import open_source
from tests.suggest.runs import make_dataset, make_run, save, save_model


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rank")
    root = make_dataset(tmp / "data", n_labelled=10, n_unlabelled=10)
    return make_run(tmp / "train", root), make_run(tmp / "selftrain", root, selftrain=True)


def test_the_ranking_is_deterministic(runs, tmp_path):
    run, _ = runs
    a = suggest_images(open_source(run.path), [], 4, tmp_path / "a", seed=5)
    b = suggest_images(open_source(run.path), [], 4, tmp_path / "b", seed=5)
    assert [s.id for s in a] == [s.id for s in b]
    for name in (SUGGESTIONS_CSV, CONTACT_SHEET):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    rows = read_suggestions(tmp_path / "a" / SUGGESTIONS_CSV)
    assert [int(r["rank"]) for r in rows] == [1, 2, 3, 4]
    assert set(rows[0]) >= {
        "rank",
        "image",
        "score",
        "informativeness",
        "uncertainty",
        "uncertain_area",
        "diversity",
    }
    assert all(r["disagreement"] == "" for r in rows)  # one model: no Teacher-Student part


def test_outputs_record_what_was_done(runs, tmp_path):
    from PIL import Image

    run, _ = runs
    suggest_images(
        open_source(run.path), [], 3, tmp_path, ScoreSettings(area_exponent=1.0, diversity=2.0), seed=1
    )
    meta = json.loads((tmp_path / SUGGEST_JSON).read_text())
    assert meta["budget"] == 3 and meta["seed"] == 1 and meta["pool"] == 10
    assert meta["settings"]["area_exponent"] == 1.0 and meta["settings"]["diversity"] == 2.0
    assert meta["models"] == [{"folder": str(run.path / "model"), "role": "model"}]
    sheet = Image.open(tmp_path / CONTACT_SHEET)
    assert sheet.width > 3 * 192 and sheet.height > 192  # three thumbnails in a row


def test_teacher_and_student_disagreement_is_a_part(runs, tmp_path):
    _, run = runs
    source = open_source(run.path)
    assert [p.parent.name for p in source.models] == ["gen1", "gen0"]  # final model first
    chosen = suggest_images(source, [], 3, tmp_path)
    assert all(s.disagreement > 0 for s in chosen)
    rows = read_suggestions(tmp_path / SUGGESTIONS_CSV)
    assert all(float(r["disagreement"]) > 0 for r in rows)


class FakeMembers:
    """A stand-in for the models: an image's views disagree by its green level (the "hard" images are green),
    and its features are its mean colour in steps of 16 (so images that differ only by noise look alike)."""

    def __init__(self, folders, flips=(), device="cpu"):
        self.folders = list(folders)
        self.meta = type("Meta", (), {"mpp": None})()

    def __call__(self, images, resize=True):
        probs = []
        for im in images:
            g = float(im[..., 1].mean()) / 255
            probs.append(np.stack([np.full((32, 32), 0.5 + d * g / 3, np.float32) for d in (-1, 0, 1)]))
        return MemberOutput(np.stack(probs), np.zeros(3, int), self.features(images))

    def features(self, images, resize=True):
        return np.array([np.round(im.reshape(-1, 3).mean(0) / 16) for im in images], np.float32)


def test_diversity_spreads_the_choice_over_a_pool_of_copies(tmp_path, monkeypatch):
    """Ten noisy copies of one hard (green) image and ten distinct images: the choice holds one copy."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "pool"
    for i in range(10):  # different noise each: not duplicates by hash, alike in the features
        save(
            folder / f"hard{i}.png",
            np.clip(rng.normal([48, 208, 48], 25, (48, 48, 3)), 0, 255).astype(np.uint8),
        )
    for i in range(10):
        colour = [30 + 20 * i, 60 + 5 * i, 200 - 15 * i]
        save(folder / f"other{i}.png", np.clip(rng.normal(colour, 3, (48, 48, 3)), 0, 255).astype(np.uint8))
    model = save_model(tmp_path / "model")
    monkeypatch.setattr(members_mod, "Members", FakeMembers)
    spread = suggest_images(open_source(model), [folder], 10, tmp_path / "a")
    assert sum(Path(s.id).name.startswith("hard") for s in spread) == 1
    assert Path(spread[0].id).name.startswith("hard")  # the most informative first
    alone = suggest_images(open_source(model), [folder], 10, tmp_path / "b", ScoreSettings(diversity=0.0))
    assert sum(Path(s.id).name.startswith("hard") for s in alone) == 10  # uncertainty alone: all copies


def test_a_run_whose_model_did_not_train_on_its_images_is_refused(runs, tmp_path):
    run, _ = runs
    other = tmp_path / "run"
    other.mkdir()
    for name in ("config.yaml", "split.json", "summary.json"):
        (other / name).write_bytes((run.path / name).read_bytes())
    save_model(other / "model", trained_on={"images": ["0" * 64], "masks": [], "val_images": []})
    with pytest.raises(ModelError, match="does not match the images"):
        suggest_images(open_source(other), [], 2, tmp_path / "out")


def test_tiles_at_another_resolution_are_refused(tmp_path):
    import torch

    from teachseg.models import ModelMeta, build_model, save_model_folder

    folder = make_dataset(tmp_path / "tiles", n_labelled=0, n_unlabelled=3)
    # 64 px tiles at 1 um/px reach a 64 px network at 1 um/px; the model saw 0.5 um/px
    (folder / "slide_tiles.json").write_text(json.dumps({"mpp": 1.0, "size": 64, "tiles": []}))
    torch.manual_seed(0)
    model = save_model_folder(
        build_model("linknet", "resnet18"), tmp_path / "m", ModelMeta("linknet", "resnet18", 64, mpp=0.5)
    )
    with pytest.raises(DataError, match="reach the network at 1 um/px and the model works at 0.5 um/px"):
        suggest_images(open_source(model), [folder], 2, tmp_path / "out")
