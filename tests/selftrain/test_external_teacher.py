"""An external Teacher (`selftrain.teacher_model`): re-scored on this run, checked for leaks (issue 13)."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from teachseg.cli import run
from teachseg.io import read_json
from teachseg.selftrain.pseudolabel import sha256_file
from tests.conftest import TINY, _merge

SPLIT = {"data": {"test_fraction": 0.2}}
ST = {"selftrain": {"max_generations": 1, "tta": False}}


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory: pytest.TempPathFactory, synth_data: Path) -> Path:
    """A `teachseg train` run on the synthetic data, with the split the self-training runs below use."""
    base = tmp_path_factory.mktemp("ext_teacher")
    cfg = _merge(
        _merge(TINY, SPLIT),
        {"output_dir": str(base / "runs"), "name": "teacher", "data": {"root": str(synth_data)}},
    )
    path = base / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert run(["train", str(path)]) == 0
    return base / "runs" / "teacher"


def _config(write_config: Callable[..., Path], root: Path, teacher: Path, **extra: Any) -> Path:
    return write_config(
        root, **_merge(_merge(_merge(SPLIT, ST), {"selftrain": {"teacher_model": str(teacher)}}), extra)
    )


def _copy_teacher(teacher_run: Path, dst: Path) -> Path:
    return Path(shutil.copytree(teacher_run / "model", dst))


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_model_folders_record_what_they_trained_on(teacher_run: Path) -> None:
    meta = read_json(teacher_run / "model" / "teachseg.json")
    split = read_json(teacher_run / "split.json")
    seen = meta["trained_on"]
    # one entry per (image, mask) pair, even where two masks are byte-identical (e.g. both empty)
    assert len(seen["images"]) == len(split["train"]) and len(seen["masks"]) == len(split["train"])
    assert len(seen["val_images"]) == len(split["val"])
    assert all(len(h) == 64 for h in seen["images"])


def test_external_teacher_is_rescored_on_this_runs_validation_images(
    tmp_path: Path, synth_data: Path, teacher_run: Path, write_config: Callable[..., Path]
) -> None:
    teacher = _copy_teacher(teacher_run, tmp_path / "teacher")
    # Pretend its own run reported a far better score: the decision must not use it.
    meta_path = teacher / "teachseg.json"
    meta = json.loads(meta_path.read_text())
    meta["summary"]["val_dice"] = 0.999
    meta_path.write_text(json.dumps(meta))
    assert run(["selftrain", str(_config(write_config, synth_data, teacher))]) == 0
    run_dir = tmp_path / "runs" / "tiny"
    split = read_json(run_dir / "split.json")
    with open(run_dir / "gen0" / "val_per_image.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["id"] for r in rows) == sorted(split["val"])
    rescored = float(np.mean([float(r["dice"]) for r in rows]))
    gen0 = read_json(run_dir / "lineage.json")["generations"][0]
    assert gen0["val_dice"] == pytest.approx(rescored, abs=1e-6)
    summary = read_json(run_dir / "summary.json")
    t = summary["teacher"]
    assert t["val_dice"] == pytest.approx(rescored, abs=1e-6) and t["own_val_dice"] == 0.999
    assert t["external_model"] == str(teacher) and t["n_val"] == len(split["val"])
    assert t["teacher_sha256"] == sha256_file(teacher / "model.safetensors")
    assert (run_dir / "gen0" / "test_per_image.csv").is_file()
    gen1 = read_json(run_dir / "lineage.json")["generations"][1]
    # ``rescored`` is read back from the CSV, which keeps six decimals
    assert gen1["gain"] == pytest.approx(
        read_json(run_dir / "gen1" / "summary.json")["val"]["dice"] - rescored, abs=1e-6
    )
    manifest = read_json(run_dir / "pseudo" / "gen1" / "manifest.json")
    assert manifest["teacher_sha256"] == t["teacher_sha256"]


def test_summary_teacher_is_the_external_teacher_after_a_replacement(
    tmp_path: Path,
    synth_data: Path,
    teacher_run: Path,
    write_config: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a Student accepted, summary.json's `teacher` still reports generation 0, not the Student."""
    import teachseg.selftrain.loop as loop

    teacher = _copy_teacher(teacher_run, tmp_path / "teacher")

    def perfect_student(cfg: Any, run_dir: Path, *args: Any, **kwargs: Any) -> dict[str, Any]:
        shutil.copytree(teacher, run_dir / "model")
        s = {"arch": "linknet", "encoder": "resnet18", "seed": 0, "val_dice": 1.0, "val": {"dice": 1.0}}
        s.update(kwargs.get("extra_summary") or {}, role="student")
        (run_dir / "summary.json").write_text(json.dumps(s))
        return s

    monkeypatch.setattr(loop, "train_model", perfect_student)
    assert run(["selftrain", str(_config(write_config, synth_data, teacher))]) == 0
    summary = read_json(tmp_path / "runs" / "tiny" / "summary.json")
    assert summary["final_generation"] == 1 and summary["best_student"]["val_dice"] == 1.0
    assert summary["teacher"].get("role") != "student"
    assert summary["teacher"]["external_model"] == str(teacher)
    assert summary["teacher"]["val_dice"] < 1.0


def test_teacher_trained_on_this_runs_validation_or_test_images_is_refused(
    tmp_path: Path,
    synth_data: Path,
    teacher_run: Path,
    write_config: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    teacher = _copy_teacher(teacher_run, tmp_path / "teacher")
    meta_path = teacher / "teachseg.json"
    meta = json.loads(meta_path.read_text())
    meta["trained_on"]["images"] = sorted(sha256_file(p) for p in (synth_data / "images").iterdir())
    meta_path.write_text(json.dumps(meta))
    capsys.readouterr()
    assert run(["selftrain", str(_config(write_config, synth_data, teacher))]) == 2
    line = _error(capsys)
    split = read_json(tmp_path / "runs" / "tiny" / "split.json")
    assert "validation images it trained on" in line and "test images it trained on" in line
    assert Path(split["val"][0]).name in line
    assert not (tmp_path / "runs" / "tiny" / "gen0").exists()


def test_teacher_trained_on_withheld_masks_is_refused(
    tmp_path: Path,
    synth_data: Path,
    teacher_run: Path,
    write_config: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The Teacher trained with every mask; this run withholds half of them: the comparison is unfair."""
    cfg = _config(write_config, synth_data, teacher_run / "model", data={"label_fraction": 0.5})
    capsys.readouterr()
    assert run(["selftrain", str(cfg)]) == 2
    line = _error(capsys)
    assert "masks withheld by label_fraction it trained on" in line
    dropped = read_json(tmp_path / "runs" / "tiny" / "split.json")["label_dropped"]
    assert dropped and Path(dropped[0]).name in line


def test_teacher_without_training_record_is_refused(
    tmp_path: Path, synth_data: Path, write_config: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from teachseg.models import ModelMeta, build_model, save_model_folder

    folder = tmp_path / "old_teacher"
    save_model_folder(
        build_model("linknet", "resnet18"), folder, ModelMeta("linknet", "resnet18", image_size=64)
    )
    capsys.readouterr()
    assert run(["selftrain", str(_config(write_config, synth_data, folder))]) == 2
    assert "does not record which images it was trained on" in _error(capsys)
