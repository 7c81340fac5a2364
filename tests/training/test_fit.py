"""A tiny training run writes a complete run folder, picks the best epoch, and actually learns."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import segmentation_models_pytorch as smp
import torch
import yaml

from teachseg.io import read_json

SUMMARY_KEYS = {
    "arch",
    "encoder",
    "seed",
    "epochs",
    "best_epoch",
    "train_loss",
    "val_dice",
    "val_jaccard",
    "wall_seconds",
    "images_per_second",
}


def _metrics(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_run_folder_is_complete(tiny_run: Path) -> None:
    for name in ("config.yaml", "split.json", "metrics.csv", "summary.json", "val_per_image.csv"):
        assert (tiny_run / name).is_file(), name
    assert (tiny_run / "checkpoints" / "last.ckpt").is_file()
    assert (tiny_run / "checkpoints" / "best.ckpt").is_file()
    assert not [p for p in tiny_run.rglob("*") if ".tmp" in p.name], "temporary files left behind"

    cfg = yaml.safe_load((tiny_run / "config.yaml").read_text())
    assert cfg["model"] == {**cfg["model"], "arch": "linknet", "encoder": "resnet18"}
    assert cfg["train"]["epochs"] == 2

    split = read_json(tiny_run / "split.json")
    assert len(split["train"]) + len(split["val"]) == 16
    assert not set(split["train"]) & set(split["val"])
    assert len(split["unlabelled"]) == 4


def test_metrics_csv_has_one_row_per_epoch(tiny_run: Path) -> None:
    rows = _metrics(tiny_run)
    assert list(rows[0]) == ["epoch", "step", "train_loss", "val_loss", "val_dice", "val_jaccard", "lr"]
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    # 12 training images in batches of 4: 3 optimiser steps an epoch; the cosine schedule lowers the rate
    assert [int(r["step"]) for r in rows] == [3, 6]
    assert float(rows[0]["lr"]) == pytest.approx(1e-3) and float(rows[1]["lr"]) < 1e-3
    for r in rows:
        assert float(r["train_loss"]) > 0 and float(r["val_loss"]) > 0
        assert 0 <= float(r["val_jaccard"]) <= float(r["val_dice"]) <= 1


def test_summary_and_best_epoch(tiny_run: Path) -> None:
    summary = read_json(tiny_run / "summary.json")
    assert set(summary) >= SUMMARY_KEYS
    assert summary["arch"] == "linknet" and summary["encoder"] == "resnet18"
    assert summary["seed"] == 0 and summary["epochs"] == 2
    assert summary["wall_seconds"] > 0 and summary["images_per_second"] > 0
    rows = _metrics(tiny_run)
    dices = [float(r["val_dice"]) for r in rows]
    best = max(range(len(dices)), key=dices.__getitem__)
    assert summary["best_epoch"] == int(rows[best]["epoch"])
    assert summary["steps"] == 6 and summary["best_step"] == int(rows[best]["step"])
    assert summary["stop"] == {"rule": "epochs", "stopped_by": "epochs", "epochs": 2}
    assert summary["val_dice"] == pytest.approx(dices[best], abs=1e-6)
    assert summary["train_loss"] == pytest.approx(float(rows[best]["train_loss"]), abs=1e-6)
    # the native-resolution evaluation of the saved model agrees with the epoch's validation Dice
    assert summary["val"]["n"] == len(read_json(tiny_run / "split.json")["val"])
    assert summary["val"]["dice"] == pytest.approx(summary["val_dice"], abs=1e-6)  # one scoring path


def test_model_folder_loads_with_smp_and_holds_the_best_checkpoint(tiny_run: Path) -> None:
    folder = tiny_run / "model"
    model = smp.from_pretrained(str(folder)).eval()
    meta = json.loads((folder / "teachseg.json").read_text())
    assert meta["arch"] == "linknet" and meta["encoder"] == "resnet18" and meta["image_size"] == 64
    assert meta["summary"]["best_epoch"] == read_json(tiny_run / "summary.json")["best_epoch"]
    ckpt = torch.load(tiny_run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    best = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    state = model.state_dict()
    assert set(best) == set(state)
    for key, value in state.items():
        assert torch.equal(value, best[key].contiguous()), key


@pytest.mark.slow
def test_training_learns_on_synthetic_tiles(synth_data: Path, write_config, tmp_path: Path) -> None:
    """~8 epochs on 12 training tiles: validation Dice clearly above the untrained model's."""
    from teachseg.cli import run
    from teachseg.config import load_config
    from teachseg.data.discover import discover
    from teachseg.models import ModelMeta, build_model
    from teachseg.training.evaluate import evaluate_records, summarise_rows
    from teachseg.training.prepare import PreparedData, load_split

    cfg_path = write_config(synth_data, name="learn.yaml", train={"epochs": 8})
    assert run(["train", str(cfg_path)]) == 0
    cfg = load_config(cfg_path)
    summary = read_json(cfg.run_dir / "summary.json")

    data = PreparedData(synth_data, discover(synth_data), load_split(cfg.run_dir / "split.json"))
    torch.manual_seed(cfg.seed)
    untrained = build_model("linknet", "resnet18").eval()
    rows = evaluate_records(untrained, ModelMeta("linknet", "resnet18", 64), data.val, precision="32")
    baseline = summarise_rows(rows)["dice"]
    assert summary["val_dice"] > baseline + 0.15, (summary["val_dice"], baseline)
    assert summary["val_dice"] > 0.6
