"""One scoring path: the epoch's validation Dice, summary.json and val_per_image.csv agree to the last digit.

The model sees images at ``image_size``; masks are scored at their native size. These tests use native
sizes that differ from ``image_size`` (as on BUSI), where resizing logits and resizing probabilities give
different masks at boundaries.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from teachseg.data.datasets import EvalDataset, Record, collate_eval
from teachseg.data.transforms import Normalise
from teachseg.io import read_json, write_png
from teachseg.losses import BCEDiceLoss
from teachseg.models import IMAGENET_MEAN, IMAGENET_STD, ModelMeta
from teachseg.training.evaluate import evaluate_records
from teachseg.training.module import SegmentationModule


class _SkewedLogits(nn.Module):
    """Logits 8 * channel 0 (normalised): about +18 on bright pixels, -3 on grey ones.

    Bilinear resizing then averages a large positive with a small negative logit, the case where
    "resize logits, then sigmoid" and "sigmoid, then resize" disagree about which side of 0.5 a pixel is.
    """

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(8.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x[:, :1]


def _block_images(root: Path, sizes: list[tuple[int, int]]) -> list[Record]:
    rng = np.random.default_rng(3)
    records = []
    for i, (h, w) in enumerate(sizes):
        blocks = rng.random((h // 6 + 1, w // 6 + 1)) > 0.5
        red = np.where(np.kron(blocks, np.ones((6, 6), bool))[:h, :w], 255, 100).astype(np.uint8)
        image = np.stack([red, np.full_like(red, 120), np.full_like(red, 120)], axis=-1)
        mask = (red > 128).astype(np.uint8) * 255
        write_png(root / "images" / f"{i}.png", image)
        write_png(root / "masks" / f"{i}.png", mask)
        records.append(
            Record(f"images/{i}.png", root / "images" / f"{i}.png", (root / "masks" / f"{i}.png",))
        )
    return records


def test_validation_step_and_evaluation_score_alike_off_the_input_size(tmp_path: Path) -> None:
    """Per image, the epoch's Dice (validation_step) equals the evaluation's Dice (val_per_image.csv)."""
    records = _block_images(tmp_path, [(64, 96), (70, 45), (50, 50)])
    meta = ModelMeta("custom", "none", image_size=32)
    model = _SkewedLogits()

    rows = evaluate_records(model, meta, records, batch_size=3, precision="fp32", channels_last=False)
    evaluated = [float(r["dice"]) for r in rows]

    ds = EvalDataset(records, 32, Normalise(IMAGENET_MEAN, IMAGENET_STD))
    module = SegmentationModule(model, BCEDiceLoss(), channels_last=False)
    epoch = []
    with torch.no_grad():
        for i in range(len(ds)):
            module.validation_step(collate_eval([ds[i]]), i)
            epoch.append(float(module.val_dice_mean.compute()))
            module.val_dice_mean.reset()
    # MeanMetric keeps float32: 1e-6 covers its rounding, not a pixel (one pixel here moves Dice by > 1e-4)
    assert epoch == pytest.approx(evaluated, abs=1e-6)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("precision", ["32-true", "bf16"])
def test_selected_epoch_summary_and_per_image_csv_agree(
    precision: str, synth_data: Path, write_config, tmp_path: Path
) -> None:
    """A tiny run at image_size 32 on 64 px images: three figures of "validation Dice" are one number.

    Tolerance 1e-6: metrics.csv and val_per_image.csv store six decimals (rounding error <= 5e-7 each).
    """
    from teachseg.cli import run

    cfg_path = write_config(
        synth_data,
        name=f"scoring-{precision}.yaml",
        data={"image_size": 32, "batch_size": 3},
        train={"epochs": 3, "precision": precision},
    )
    assert run(["train", str(cfg_path)]) == 0
    run_dir = tmp_path / "runs" / "tiny"
    summary = read_json(run_dir / "summary.json")
    history = _rows(run_dir / "metrics.csv")
    best = next(r for r in history if int(r["epoch"]) == summary["best_epoch"])
    per_image = [float(r["dice"]) for r in _rows(run_dir / "val_per_image.csv")]

    assert len(per_image) == summary["val"]["n"] == 4
    assert float(best["val_dice"]) == pytest.approx(summary["val_dice"], abs=1e-6)
    assert summary["val"]["dice"] == pytest.approx(summary["val_dice"], abs=1e-6)
    assert float(np.mean(per_image)) == pytest.approx(summary["val_dice"], abs=1e-6)
    expected = {"32-true": "fp32", "bf16": "bf16"}[precision]
    assert summary["scoring"] == {"tta": False, "precision": expected, "resize": "probabilities"}
