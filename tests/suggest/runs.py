"""Tiny datasets, run folders and model folders for the suggest tests (untrained seeded models, 64 px)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

SIZE = 48


def blob_image(seed: int, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """A grey image with a brighter elliptic blob, and the blob's mask (0/255)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    cy, cx = rng.uniform(12, size - 12, 2)
    ry, rx = rng.uniform(5, 11, 2)
    mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    base = rng.normal(rng.uniform(60, 120), 15, (size, size, 1)) + rng.normal(0, 8, (1, 1, 3))
    img = (base + mask[..., None] * rng.uniform(40, 90)).clip(0, 255).astype(np.uint8)
    return img, (mask * 255).astype(np.uint8)


def save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


@dataclass
class FakeRun:
    """A run folder made by the fixtures, and the dataset it points at."""

    path: Path
    root: Path
    split: dict[str, Any]

    @property
    def held_out(self) -> list[str]:
        return [*self.split["val"], *self.split["test"]]


def make_dataset(root: Path, n_labelled: int = 10, n_unlabelled: int = 8, prefix: str = "") -> Path:
    """``images/`` + ``masks/`` (``n_labelled`` pairs) and ``unlabelled/`` (``n_unlabelled`` images)."""
    for i in range(n_labelled):
        img, mask = blob_image(i)
        save(root / "images" / f"{prefix}l{i:02d}.png", img)
        save(root / "masks" / f"{prefix}l{i:02d}.png", mask)
    for i in range(n_unlabelled):
        save(root / "unlabelled" / f"{prefix}u{i:02d}.png", blob_image(100 + i)[0])
    return root


def save_model(
    folder: Path,
    seed: int = 0,
    trained_on: dict[str, Any] | None = None,
    size: int = 64,
    mpp: float | None = None,
) -> Path:
    """An untrained, seeded LinkNet-ResNet18 model folder."""
    import torch

    from teachseg.models import ModelMeta, build_model, save_model_folder

    torch.manual_seed(seed)
    meta = ModelMeta("linknet", "resnet18", size, trained_on=trained_on or {}, mpp=mpp)
    return save_model_folder(build_model("linknet", "resnet18"), folder, meta)


def make_run(
    path: Path,
    root: Path,
    *,
    selftrain: bool = False,
    group_regex: str | None = None,
    duplicates: str = "group",
    label_fraction: float = 1.0,
    mpp: float | None = None,
) -> FakeRun:
    """A run folder as ``teachseg train`` (or ``selftrain``: gen0 Teacher, gen1 Student accepted) writes it:
    config.yaml, split.json (made by the project's own split), model folder(s) recording what they trained on."""
    import yaml

    from teachseg.config import Config
    from teachseg.data.discover import discover
    from teachseg.data.grouping import slides_from_manifests
    from teachseg.data.splits import make_split
    from teachseg.training.identity import training_data_hashes
    from teachseg.training.prepare import PreparedData, same_content, save_split

    cfg = Config.model_validate(
        {
            "name": path.name,
            "data": {
                "root": str(root),
                "val_fraction": 0.2,
                "test_fraction": 0.2,
                "image_size": 64,
                "group_regex": group_regex,
                "duplicates": duplicates,
                "label_fraction": label_fraction,
            },
            "model": {"arch": "linknet", "encoder": "resnet18"},
        }
    )
    found = discover(root)
    split = make_split(
        found.samples,
        seed=0,
        val_fraction=0.2,
        test_fraction=0.2,
        label_fraction=label_fraction,
        group_regex=group_regex,
        slides=slides_from_manifests(found.samples),
        same_content=same_content(found) if duplicates != "off" else (),
        duplicates=duplicates,
    )
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    save_split(path / "split.json", split, root)
    data = PreparedData(root, found, split)
    seen = training_data_hashes(data.train, data.val)
    if selftrain:
        save_model(path / "gen0" / "model", 0, seen, mpp=mpp)
        save_model(path / "gen1" / "model", 1, seen, mpp=mpp)
        lineage = {
            "schema_version": 1,
            "generations": [
                {"generation": 0, "role": "teacher", "run_dir": "gen0", "val_dice": 0.5},
                {"generation": 1, "role": "student", "run_dir": "gen1", "val_dice": 0.6, "accepted": True},
            ],
            "final_generation": 1,
        }
        (path / "lineage.json").write_text(json.dumps(lineage))
    else:
        save_model(path / "model", 0, seen, mpp=mpp)
        (path / "summary.json").write_text(json.dumps({"arch": "linknet", "encoder": "resnet18"}))
    return FakeRun(path, root, json.loads((path / "split.json").read_text()))
