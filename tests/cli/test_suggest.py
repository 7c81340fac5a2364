"""``teachseg suggest`` through ``teachseg.cli.run``: outputs, and one clear line for every bad input."""

from __future__ import annotations

import json

import pytest

from teachseg.cli import run
from tests.cli.conftest import one_error_line
from tests.suggest.runs import make_dataset, make_run, save_model


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("suggest-cli")
    root = make_dataset(tmp / "data", n_labelled=10, n_unlabelled=6)
    return make_run(tmp / "run", root)


def test_suggest_on_a_run_writes_its_outputs_in_the_run(fake, capsys):
    assert run(["suggest", str(fake.path), "--budget", "3", "--no-progress"]) == 0
    out_dir = fake.path / "suggestions"
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "contact_sheet.png",
        "suggest.json",
        "suggestions.csv",
    ]
    stdout = capsys.readouterr().out
    assert "3 to annotate next" in stdout and str(out_dir / "suggestions.csv") in stdout
    assert len((out_dir / "suggestions.csv").read_text().splitlines()) == 4
    assert json.loads((out_dir / "suggest.json").read_text())["pool"] == 6


def test_suggest_settings_reach_the_ranking(fake, tmp_path):
    args = ["suggest", str(fake.path), "-n", "2", "--out", str(tmp_path), "--no-progress", "--diversity", "0"]
    assert (
        run([*args, "--area-exponent", "1", "--band", "0.2", "0.8", "--border-px", "1", "--seed", "7"]) == 0
    )
    meta = json.loads((tmp_path / "suggest.json").read_text())
    assert meta["seed"] == 7
    assert meta["settings"] == {
        "band": [0.2, 0.8],
        "border_px": 1,
        "area_exponent": 1.0,
        "diversity": 0.0,
        "flips": ["h", "v"],
    }


def _error(capsys, *args: str) -> str:
    assert run(["suggest", *args, "--no-progress"]) != 0
    return one_error_line(capsys)


def test_a_budget_larger_than_the_pool(fake, tmp_path, capsys):
    err = _error(capsys, str(fake.path), "--budget", "7", "--out", str(tmp_path))
    assert "the budget of 7 is larger than the pool of 6 images" in err and "--budget 6 or less" in err


def test_a_run_without_unlabelled_images(tmp_path, capsys):
    full = make_run(tmp_path / "run", make_dataset(tmp_path / "data", n_unlabelled=0))
    err = _error(capsys, str(full.path), "--budget", "2")
    assert "no unlabelled images to suggest" in err and "give a folder of unlabelled images" in err


def test_a_model_folder_that_does_not_match_the_images(fake, tmp_path, capsys):
    other = tmp_path / "run"
    other.mkdir()
    for name in ("config.yaml", "split.json", "summary.json"):
        (other / name).write_bytes((fake.path / name).read_bytes())
    save_model(other / "model", trained_on={"images": ["f" * 64], "masks": [], "val_images": []})
    err = _error(capsys, str(other), "--budget", "2")
    assert "does not match the images" in err and str(other / "model") in err


def test_a_model_folder_needs_images_and_out(tmp_path, capsys):
    model = save_model(tmp_path / "model")
    assert "needs --out" in _error(capsys, str(model), str(tmp_path), "--budget", "1")
    assert "no unlabelled pool of its own" in _error(
        capsys, str(model), "--budget", "1", "--out", str(tmp_path / "o")
    )


def test_other_bad_inputs(fake, tmp_path, capsys):
    assert "run folder not found" in _error(capsys, str(tmp_path / "nope"), "--budget", "1")
    exp = tmp_path / "exp"
    (exp / "r1").mkdir(parents=True)
    (exp / "experiment.json").write_text("{}")
    assert "experiment folder" in _error(capsys, str(exp), "--budget", "1")
    slide = tmp_path / "x.svs"
    slide.write_bytes(b"")
    img_dir = fake.root / "unlabelled"
    assert "slides and images" in _error(capsys, str(fake.path), str(slide), str(img_dir), "--budget", "1")
    assert "no uncertainty to rank by" in _error(capsys, str(fake.path), "--no-tta", "--budget", "1")
