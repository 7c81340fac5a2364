"""Configs and comparisons for the training-type commands (train, selftrain, experiment) under crashes.

Determinism is what the resume tests rely on: a fixed seed, fp32 on the CPU, no loader workers, one thread;
a resumed run continues from the last epoch's checkpoint and then matches the uninterrupted run's metrics
within 1e-4 (tests/training/test_resume.py).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
import yaml

from teachseg.io import read_json
from tests.conftest import TINY, _merge

TOL = 1e-4
METRICS = ("train_loss", "val_loss", "val_dice", "val_jaccard")


def write_cfg(path: Path, data: Path, runs: Path, name: str, **extra: Any) -> Path:
    cfg = _merge(TINY, {"output_dir": str(runs), "name": name, "data": {"root": str(data)}, **extra})
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def compare_training(run: Path, ref: Path) -> None:
    """Per-epoch metrics and the summary of a (resumed) training run equal the uninterrupted run's."""
    a, b = _rows(ref / "metrics.csv"), _rows(run / "metrics.csv")
    assert [r["epoch"] for r in b] == [r["epoch"] for r in a], f"{run.name}: epochs {[r['epoch'] for r in b]}"
    for ra, rb in zip(a, b, strict=True):
        for key in METRICS:
            assert float(rb[key]) == pytest.approx(float(ra[key]), abs=TOL), (run.name, ra["epoch"], key)
    sa, sb = read_json(ref / "summary.json"), read_json(run / "summary.json")
    assert sb["best_epoch"] == sa["best_epoch"], (run.name, "best_epoch")
    assert sb["val_dice"] == pytest.approx(sa["val_dice"], abs=TOL), (run.name, "val_dice")
    assert (run / "model" / "model.safetensors").is_file()


def compare_selftrain(run: Path, ref: Path) -> None:
    """Lineage (decisions, scores) and every generation's training equal the uninterrupted run's."""
    la, lb = read_json(ref / "lineage.json"), read_json(run / "lineage.json")
    ga, gb = la["generations"], lb["generations"]
    assert [g["generation"] for g in gb] == [g["generation"] for g in ga], "generations"
    for x, y in zip(ga, gb, strict=True):
        assert (y.get("decision"), y.get("accepted")) == (x.get("decision"), x.get("accepted")), y[
            "generation"
        ]
        for key in ("val_dice", "train_loss"):
            if x.get(key) is not None:
                assert y[key] == pytest.approx(x[key], abs=TOL), (y["generation"], key)
        compare_training(run / f"gen{x['generation']}", ref / f"gen{x['generation']}")
    assert lb["final_generation"] == la["final_generation"]
    sa, sb = read_json(ref / "summary.json"), read_json(run / "summary.json")
    assert sb["final_model"] == sa["final_model"]
    for gen in sorted((ref / "pseudo").glob("gen*")):
        ma, mb = read_json(gen / "manifest.json"), read_json(run / "pseudo" / gen.name / "manifest.json")
        assert [i["id"] for i in mb["images"]] == [i["id"] for i in ma["images"]], gen.name
