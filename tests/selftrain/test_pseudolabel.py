"""Soft pseudo-labels: native size, 8-bit probabilities, manifest, reuse on resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from teachseg.data.datasets import Record
from teachseg.inference.images import safe_key
from teachseg.io import read_json
from teachseg.models import ModelMeta
from teachseg.selftrain.pseudolabel import generate_pseudo_labels, label_stats, pseudo_records, sha256_file

SHA_A, SHA_B = "a" * 64, "b" * 64


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
    generate_pseudo_labels(
        RedChannel(), meta, recs[:2], out, generation=1, teacher="gen0", teacher_sha256=SHA_A, tta=False
    )
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}

    class Exploding(RedChannel):
        calls = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            Exploding.calls += x.shape[0]
            return super().forward(x)

    manifest = generate_pseudo_labels(
        Exploding(), meta, recs, out, generation=1, teacher="gen0", teacher_sha256=SHA_A, tta=False
    )
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


class Counting(RedChannel):
    """Counts the images it predicts; ``sign`` flips its labels so a rewrite is visible in the PNGs."""

    def __init__(self, sign: float = 1.0) -> None:
        super().__init__()
        self.sign = sign
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += x.shape[0]
        return self.sign * super().forward(x)


def _labels(out: Path) -> dict[str, float]:
    return {p.name: float(np.asarray(Image.open(p)).mean()) for p in sorted(out.glob("*.png"))}


def _gen(model: torch.nn.Module, recs: list[Record], out: Path, sha: str | None, tta: bool) -> dict:
    meta = ModelMeta(arch="linknet", encoder="resnet18", image_size=32)
    return generate_pseudo_labels(
        model, meta, recs, out, generation=1, teacher="gen0", teacher_sha256=sha, tta=tta
    )


def test_labels_are_reused_only_for_the_same_teacher_and_tta(tmp_path: Path) -> None:
    recs = _images(tmp_path)
    out = tmp_path / "p"
    first = _gen(Counting(), recs, out, SHA_A, tta=False)
    assert first["teacher_sha256"] == SHA_A and first["tta"] is False and first["complete"] is True
    original = _labels(out)

    same = Counting(sign=-1.0)
    _gen(same, recs, out, SHA_A, tta=False)
    assert same.calls == 0 and _labels(out) == original  # same teacher and TTA: reused as is

    other_teacher = Counting(sign=-1.0)
    manifest = _gen(other_teacher, recs, out, SHA_B, tta=False)
    assert other_teacher.calls == len(recs)  # another teacher: every label made again
    assert manifest["teacher_sha256"] == SHA_B
    flipped = _labels(out)
    assert all(abs(flipped[k] - (255 - v)) < 2 for k, v in original.items())

    other_tta = Counting()
    manifest = _gen(other_tta, recs, out, SHA_B, tta=True)
    assert other_tta.calls > 0 and manifest["tta"] is True  # TTA changed: made again
    assert set(_labels(out)) == set(original)
    assert not [p for p in out.parent.iterdir() if ".stale-" in p.name]  # old labels removed


def test_labels_without_a_matching_manifest_are_not_trusted(tmp_path: Path) -> None:
    """PNGs left by a run whose manifest names no teacher (or an older teachseg) are made again."""
    recs = _images(tmp_path)
    out = tmp_path / "p"
    out.mkdir()
    for rec in recs:  # stale all-white labels from an unknown teacher, no manifest
        Image.fromarray(np.full((40, 52), 255, np.uint8)).save(out / f"{safe_key(rec.id)}.png")
    model = Counting()
    manifest = _gen(model, recs, out, SHA_A, tta=False)
    assert model.calls == len(recs)
    assert {i["file"] for i in manifest["images"]} == set(_labels(out))
    assert all(v < 250 for v in _labels(out).values())


def test_interrupted_labels_of_the_same_teacher_are_kept(tmp_path: Path) -> None:
    """The manifest header is written before any label: an interrupted run's labels are reused."""
    import json

    recs = _images(tmp_path)
    out = tmp_path / "p"
    _gen(Counting(), recs, out, SHA_A, tta=False)
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**manifest, "complete": False, "images": []}))
    model = Counting()
    _gen(model, recs, out, SHA_A, tta=False)
    assert model.calls == 0


def test_a_changed_source_image_gets_a_new_label(tmp_path: Path) -> None:
    recs = _images(tmp_path)
    out = tmp_path / "p"
    _gen(Counting(), recs, out, SHA_A, tta=False)
    arr = np.zeros((40, 52, 3), np.uint8)  # u0 is now all background
    Image.fromarray(arr).save(recs[0].image)
    model = Counting()
    manifest = _gen(model, recs, out, SHA_A, tta=False)
    assert model.calls == 1
    assert manifest["images"][0]["sha256"] == sha256_file(recs[0].image)
    assert manifest["images"][0]["positive_share"] < 0.05


def test_labels_keep_the_teachers_uncertainty(tmp_path: Path) -> None:
    """Soft, not thresholded: where the teacher says p = 0.5 (red 124 gives a logit near 0) the label is near
    128, with TTA and without; a hard 0/255 label there would lose what the confidence weights are made of."""
    arr = np.zeros((40, 60, 3), np.uint8)
    arr[:, :20, 0] = 255
    arr[:, 20:40, 0] = 124  # normalised red about 0: the teacher is unsure
    Image.fromarray(arr).save(tmp_path / "mid.png")
    rec = Record(id="unlabelled/mid.png", image=tmp_path / "mid.png")
    meta = ModelMeta(arch="linknet", encoder="resnet18", image_size=32)
    for tta in (False, True):
        out = tmp_path / f"p{tta}"
        manifest = generate_pseudo_labels(
            RedChannel(), meta, [rec], out, generation=1, teacher="gen0", tta=tta
        )
        label = np.asarray(Image.open(out / manifest["images"][0]["file"])).astype(int)
        assert label[:, :14].min() > 240 and label[:, 46:].max() < 15
        assert 100 < label[:, 26:34].mean() < 156 and label[:, 26:34].min() > 100


def test_labels_are_a_phase_of_their_generation(tmp_path: Path) -> None:
    from tests.training.test_progress import Recorder

    recs = _images(tmp_path, n=3)
    meta = ModelMeta(arch="linknet", encoder="resnet18", image_size=32)
    rec = Recorder()
    generate_pseudo_labels(
        RedChannel(),
        meta,
        recs,
        tmp_path / "p",
        generation=2,
        teacher="gen1",
        tta=False,
        batch_size=2,
        progress=rec,
    )
    assert rec.events == [
        ("start", "gen2 pseudo-labels", 3, "image", 0),
        ("update", 2, "2/3 images"),
        ("update", 3, "3/3 images"),
        ("finish",),
    ]
