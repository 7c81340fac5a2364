"""`teachseg pretrain` from the command line: the folder it writes, resume, the refusal of an encoder that saw
held-out images when a run loads it, and how bad input is reported."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from teachseg.cli import run
from teachseg.io import read_json
from teachseg.pretrain.record import PretrainRecord
from tests.conftest import TINY, _merge

QUICK = {"pretrain": {"epochs": 1, "batch_size": 4}, "data": {"test_fraction": 0.2}}


def _fail(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    code = run(args)
    captured = capsys.readouterr()
    assert code == 2, (code, captured.err, captured.out)
    assert "Traceback" not in captured.err + captured.out
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, captured.err
    return errors[0]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory, synth_data: Path) -> tuple[Path, Path]:
    """(config, folder) of one `teachseg pretrain` run on the synthetic data, seed 0 (shared, read-only)."""
    base = tmp_path_factory.mktemp("cli_pretrain")
    cfg = _merge(_merge(TINY, QUICK), {"output_dir": str(base / "runs"), "data": {"root": str(synth_data)}})
    path = base / "config.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    assert run(["pretrain", str(path)]) == 0
    (folder,) = (base / "runs" / "pretrain").iterdir()
    return path, folder


def test_pretrain_writes_a_folder_runs_can_load(pretrained: tuple[Path, Path], capsys) -> None:
    cfg, folder = pretrained
    assert (folder / "encoder.safetensors").is_file()
    record = PretrainRecord.read(folder / "pretrain.json")
    assert folder.name == f"resnet18_seed0_{record.identity[:10]}"
    assert record.settings["modality"] == "he" and record.settings["image_size"] == 64
    capsys.readouterr()
    assert run(["pretrain", str(cfg), "--resume"]) == 0  # finished: nothing to do
    printed = capsys.readouterr().out
    assert str(folder / "encoder.safetensors") in printed and "CPU min" in printed
    assert "model.encoder_weights" in printed


def test_an_existing_folder_needs_resume_or_overwrite(pretrained: tuple[Path, Path], capsys) -> None:
    cfg, folder = pretrained
    err = _fail(["pretrain", str(cfg)], capsys)
    assert str(folder) in err and "--resume" in err


def test_a_run_of_the_same_split_loads_it_and_records_its_cost(
    pretrained: tuple[Path, Path], synth_data: Path, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    _, folder = pretrained
    cfg = write_config(synth_data, **QUICK, model={"encoder_weights": str(folder)})
    assert run(["train", str(cfg)]) == 0
    summary = read_json(tmp_path / "runs" / "tiny" / "summary.json")
    assert summary["pretrain"]["record"] == str(folder / "pretrain.json")
    assert summary["pretrain"]["seconds"] == read_json(folder / "pretrain.json")["seconds"]


def test_an_encoder_that_saw_held_out_images_is_refused(
    pretrained: tuple[Path, Path], synth_data: Path, write_config: Callable[..., Path], tmp_path: Path, capsys
) -> None:
    _, folder = pretrained
    # seed 5 holds out other images, some of which the seed-0 pretraining trained on
    cfg = write_config(synth_data, **QUICK, seed=5, model={"encoder_weights": str(folder)})
    for command in ("train", "selftrain"):
        err = _fail([command, str(cfg), "--overwrite"], capsys)
        assert str(folder / "encoder.safetensors") in err
        assert "image(s) this run holds out" in err and "pretrain with this run's config and seed" in err
    assert not (tmp_path / "runs" / "tiny" / "model").exists()  # refused before training


def test_no_images(tmp_path: Path, write_config: Callable[..., Path], capsys) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    err = _fail(["pretrain", str(write_config(empty, **QUICK))], capsys)
    assert str(empty) in err and "no images found" in err


def test_an_unreadable_image(
    synth_data: Path, tmp_path: Path, write_config: Callable[..., Path], capsys
) -> None:
    data = Path(shutil.copytree(synth_data, tmp_path / "data"))
    broken = sorted((data / "unlabelled").iterdir())[-1]
    broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    cfg = write_config(data, **QUICK)
    err = _fail(["pretrain", str(cfg)], capsys)
    assert broken.name in err and "--skip-bad" in err
    assert run(["pretrain", str(cfg), "--skip-bad", "--overwrite"]) == 0
    (folder,) = (tmp_path / "runs" / "pretrain").iterdir()
    record = PretrainRecord.read(folder / "pretrain.json")
    assert len(record.skipped) == 1 and record.skipped[0]["path"] == str(broken)
    assert record.skipped[0]["id"] not in record.image_ids and len(record.images) == len(record.image_ids)


@pytest.mark.parametrize(
    ("sets", "expected"),
    [
        (["model.encoder=tu-vit_tiny_patch16_224"], "encoder 'tu-vit_tiny_patch16_224' cannot be pretrained"),
        (["data.image_size=32"], "deepest feature map, which is 1 x 1 at 32 px"),
        (["pretrain.objective=byol"], "pretrain.objective"),
        (["pretrain.image_size=48"], "not a multiple of 32"),
    ],
)
def test_unsupported_settings(
    synth_data: Path, write_config: Callable[..., Path], capsys, sets: list[str], expected: str
) -> None:
    cfg = write_config(synth_data, **QUICK)
    args = ["pretrain", str(cfg)]
    for s in sets:
        args += ["--set", s]
    assert expected in _fail(args, capsys)
