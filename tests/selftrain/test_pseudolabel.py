"""Soft pseudo-labels: native size, 8-bit probabilities, manifest, reuse on resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from teachseg.data.datasets import Record
from teachseg.io import read_json
from teachseg.models import ModelMeta
from teachseg.selftrain.pseudolabel import generate_pseudo_labels, label_stats, pseudo_records, sha256_file


class RedChannel(torch.nn.Module):
    """A model stand-in: the logit is a steep function of the (normalised) red channel."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x[:, :1] * 10.0) + self.dummy


def _images(tmp: Path, n: int = 3) -> list[Record]:
    recs = []
    for i in range(n):
        arr = np.zeros((40 + i, 52, 3), np.uint8)
        arr[:, :26, 0] = 255  # left half red -> positive
        p = tmp / f"u{i}.png"
        Image.fromarray(arr).save(p)
        recs.append(Record(id=f"unlabelled/u{i}.png", image=p))
    return recs


def test_labels_are_soft_native_size_and_listed(tmp_path: Path) -> None:
    recs = _images(tmp_path)
    meta = ModelMeta(arch="linknet", encoder="resnet18", image_size=32)
    out = tmp_path / "pseudo" / "gen1"
    manifest = generate_pseudo_labels(RedChannel(), meta, recs, out, generation=1, teacher="gen0", tta=True)
    assert manifest["teacher"] == "gen0" and manifest["stats"]["n_images"] == 3
    on_disk = read_json(out / "manifest.json")
    assert on_disk == manifest
    for rec, item in zip(recs, manifest["images"], strict=True):
        assert item["id"] == rec.id and item["sha256"] == sha256_file(rec.image)
        label = np.asarray(Image.open(out / item["file"]))
        src = np.asarray(Image.open(rec.image))
        assert label.shape == src.shape[:2] and label.dtype == np.uint8
        # left half confidently positive, right half confidently negative
        assert label[:, :20].mean() > 200 and label[:, 32:].mean() < 55
        assert 0.4 < item["positive_share"] < 0.6
    assert not list(out.glob("*.tmp*"))
    pr = pseudo_records(recs, manifest, out)
    assert all(r.is_pseudo and r.pseudo.is_file() for r in pr)


def test_finished_labels_are_not_rewritten(tmp_path: Path) -> None:
    recs = _images(tmp_path)
    meta = ModelMeta(arch="linknet", encoder="resnet18", image_size=32)
    out = tmp_path / "p"
    generate_pseudo_labels(RedChannel(), meta, recs[:2], out, generation=1, teacher="gen0")
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}

    class Exploding(RedChannel):
        calls = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            Exploding.calls += x.shape[0]
            return super().forward(x)

    manifest = generate_pseudo_labels(Exploding(), meta, recs, out, generation=1, teacher="gen0", tta=False)
    assert Exploding.calls == 1  # only the missing image was predicted
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    assert all(after[k] == v for k, v in before.items())
    assert len(manifest["images"]) == 3


def test_label_stats() -> None:
    p = np.array([[0.0, 1.0], [0.5, 0.95]], np.float32)
    s = label_stats(p, confident_at=0.9)
    assert s["confident_share"] == 0.75
    assert s["positive_share"] == 0.75
    assert abs(s["mean_confidence"] - (1 + 1 + 0.5 + 0.95) / 4) < 1e-6
