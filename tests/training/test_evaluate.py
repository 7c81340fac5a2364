"""Prediction at native resolution, per-image scores, PNG outputs, and `teachseg evaluate`."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from teachseg.data.datasets import Record
from teachseg.inference.images import predict_prob, safe_key
from teachseg.io import read_json
from teachseg.models import ModelMeta, build_model
from teachseg.training.evaluate import evaluate_records, summarise_rows, write_per_image_csv


@pytest.fixture(scope="module")
def model_and_meta() -> tuple[torch.nn.Module, ModelMeta]:
    torch.manual_seed(0)
    return build_model("linknet", "resnet18").eval(), ModelMeta("linknet", "resnet18", image_size=32)


def test_predict_prob_returns_native_size_probabilities(model_and_meta) -> None:
    model, meta = model_and_meta
    rng = np.random.default_rng(0)
    images = [
        rng.integers(0, 255, (40, 70, 3), dtype=np.uint8),
        rng.integers(0, 255, (64, 64, 3), dtype=np.uint8),
    ]
    probs = predict_prob(model, images, meta, precision="32")
    assert [p.shape for p in probs] == [(40, 70), (64, 64)]
    assert all(p.dtype == np.float32 and p.min() >= 0 and p.max() <= 1 for p in probs)
    tta = predict_prob(model, images, meta, tta=True, precision="32")
    assert [p.shape for p in tta] == [(40, 70), (64, 64)]
    assert not np.allclose(tta[0], probs[0])  # an untrained model is not flip-invariant


def test_evaluate_records_scores_and_writes_pngs(model_and_meta, synth_data: Path, tmp_path: Path) -> None:
    model, meta = model_and_meta
    names = sorted(p.name for p in (synth_data / "images").iterdir())[:3]
    records = [
        Record(id=f"images/{n}", image=synth_data / "images" / n, masks=(synth_data / "masks" / n,), cls="c")
        for n in names
    ]
    rows = evaluate_records(model, meta, records, pred_dir=tmp_path / "pred", precision="32")
    assert [r["id"] for r in rows] == [r.id for r in records]
    for row, rec in zip(rows, records, strict=True):
        assert 0 <= row["jaccard"] <= row["dice"] <= 1
        gt = np.asarray(Image.open(rec.masks[0])) > 0
        assert row["gt_pixels"] == int(gt.sum())
        key = safe_key(rec.id)
        prob = np.asarray(Image.open(tmp_path / "pred" / f"{key}_prob.png"))
        assert prob.shape == (64, 64) and prob.dtype == np.uint8
        assert row["pred_pixels"] == pytest.approx(int((prob >= 128).sum()), abs=64)
        assert np.array_equal(np.asarray(Image.open(tmp_path / "pred" / f"{key}_gt.png")) > 0, gt)
    write_per_image_csv(tmp_path / "per_image.csv", rows)
    with open(tmp_path / "per_image.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [t["id"] for t in table] == [r.id for r in records]
    assert float(table[0]["dice"]) == pytest.approx(rows[0]["dice"], abs=1e-6)
    stats = summarise_rows(rows)
    assert stats["n"] == 3 and stats["dice"] == pytest.approx(np.mean([r["dice"] for r in rows]))
    assert stats["per_class"]["c"]["n"] == 3


def test_safe_key_is_filesystem_safe_and_unique() -> None:
    a, b = safe_key("benign/x (1).png"), safe_key("benign/x_1_.png")
    assert "/" not in a and " " not in a and "(" not in a
    assert a != b


def test_cli_evaluate_writes_per_image_csv_and_summary(
    tiny_run: Path, synth_data: Path, tmp_path: Path
) -> None:
    from teachseg.cli import run

    out = tmp_path / "eval"
    assert run(["evaluate", str(tiny_run / "model"), str(synth_data), "--out", str(out)]) == 0
    with open(out / "per_image.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 16  # every labelled image; unlabelled/ ones are skipped
    assert list(rows[0])[:4] == ["id", "class", "dice", "jaccard"]
    summary = read_json(out / "summary.json")
    assert summary["n"] == 16 and summary["tta"] is False
    assert summary["dice"] == pytest.approx(np.mean([float(r["dice"]) for r in rows]), abs=1e-5)
    assert summary["model"] == str(tiny_run / "model")
