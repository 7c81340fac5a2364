"""Nothing inside a run reads the selection images: changing them changes no within-run decision (#32).

The selection images (``data.select_fraction``) choose between methods, so the choice is fair only if no
method has looked at them before: the best epoch, the stopping step and teacher_student's acceptance of its
Students must come out the same whatever those images hold. Two runs on copies of one dataset whose selection
images (and masks) are replaced by noise in the second must take every decision alike, and differ only in
their selection Dice.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from teachseg.config import Config
from teachseg.io import read_json
from teachseg.selftrain.methods import run_method
from tests.conftest import TINY, _merge


def _config(root: Path, out: Path, method: str) -> Config:
    raw = _merge(
        TINY,
        {
            "name": method,
            "output_dir": str(out),
            "data": {
                "root": str(root),
                "test_fraction": 0.2,
                "select_fraction": 0.15,
                "label_fraction": 0.5,
                "duplicates": "off",  # the split must not depend on the pixels that change
            },
            "train": {"stop": "converge", "converge": {"patience": 2, "eval_every_steps": 1, "max_steps": 6}},
            "selftrain": {"method": method, "max_generations": 1, "tta": False},
        },
    )
    return Config.model_validate(raw)


def _scramble(root: Path, ids: list[str]) -> None:
    """Replace the images and masks of ``ids`` with noise (same size and format)."""
    rng = np.random.default_rng(0)
    for image_id in ids:
        image = root / image_id
        size = Image.open(image).size
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(image)
        mask = root / "masks" / Path(image_id).name
        Image.fromarray((rng.random((size[1], size[0])) > 0.5).astype(np.uint8) * 255).save(mask)


def _decisions(run: Path) -> dict[str, Any]:
    """What the run decided: per generation, its metrics, best epoch and step, stop, and the acceptance."""
    lineage = read_json(run / "lineage.json")
    out: dict[str, Any] = {"final": lineage["final_generation"], "generations": []}
    for g in lineage["generations"]:
        gen = run / g["run_dir"]
        summary = read_json(gen / "summary.json")
        with open(gen / "metrics.csv", newline="") as fh:
            metrics = list(csv.DictReader(fh))
        keys = ("best_epoch", "best_step", "steps", "stop", "val_dice", "test_dice")
        out["generations"].append(
            {
                "decision": g.get("decision"),
                "accepted": g.get("accepted"),
                "metrics": metrics,
                **{k: summary[k] for k in keys},
            }
        )
    return out


@pytest.mark.slow
@pytest.mark.parametrize("method", ["teacher_student", "fixmatch"])
def test_changing_the_selection_images_changes_no_decision_inside_a_run(
    synth_data: Path, tmp_path: Path, method: str
) -> None:
    a_root, b_root = tmp_path / "a", tmp_path / "b"
    shutil.copytree(synth_data, a_root)
    run_method(_config(a_root, tmp_path / "runs_a", method), tmp_path / "runs_a" / method)
    split_a = read_json(tmp_path / "runs_a" / method / "split.json")
    assert split_a["select"], "the split has no selection images"

    shutil.copytree(synth_data, b_root)
    _scramble(b_root, split_a["select"])
    run_method(_config(b_root, tmp_path / "runs_b", method), tmp_path / "runs_b" / method)
    split_b = read_json(tmp_path / "runs_b" / method / "split.json")
    assert {k: v for k, v in split_b.items() if k != "root"} == {
        k: v for k, v in split_a.items() if k != "root"
    }

    run_a, run_b = tmp_path / "runs_a" / method, tmp_path / "runs_b" / method
    assert _decisions(run_b) == _decisions(run_a)
    if method == "teacher_student":
        assert len(_decisions(run_a)["generations"]) == 2  # a Student was trained and judged
    # the selection images did change, and were scored after every decision
    select_a = read_json(run_a / "gen0" / "summary.json")["select_dice"]
    select_b = read_json(run_b / "gen0" / "summary.json")["select_dice"]
    assert select_a is not None and select_b is not None and select_a != select_b
