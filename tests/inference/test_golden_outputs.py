"""Prediction outputs stay byte for byte what they were before the inference package was reorganised (issue 10).

The hashes below were computed with the code before the reorganisation on the same generated inputs, with a
model stand-in that returns the red channel (plain numpy, so the figures do not depend on torch's kernels).
Summaries are compared without their timing and input path, GeoJSON without its random feature ids, and
``cohort.csv`` without its slide path and seconds columns. Overlay PNGs are compared by their decoded pixels
(since their zlib level was lowered): those hashes were computed with the code before that change, which gave
the same pixels.

Issue 31 changed the slide summaries and ``cohort.csv`` on purpose: the tumour fraction of the tissue counts
tumour on the tissue's own pixels (``tumour_in_tissue_area_px``; it exceeded 1 before) and the tissue area is
counted on the predicted pixels; ``cohort.csv`` gained ``tumour_in_tissue_mm2`` and the model columns. Their
hashes were recomputed then; every other file kept its hash. The records of what made the outputs (summary
``identity``, ``prediction``, ``output_bytes``; ``predict_identity.json``) are left out here.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np

from teachseg.data.synth_slide import synthetic_slide
from teachseg.inference.options import ModelInfo, PredictOptions
from teachseg.inference.run import predict_paths
from teachseg.io import write_png

EXPECTED = {
    "nomask/cohort.csv": "ec85a8f379a07004",
    "nomask/slide.geojson": "6670a558edc32946",
    "nomask/slide_overlay.png": "9d5721311298a4ec",
    "nomask/slide_prob.tif": "ad023fbc8f3745c8",
    "nomask/slide_summary.json": "1b960670ae538aee",
    "plain/a_mask.png": "7e8f8844946ba842",
    "plain/a_overlay.png": "38e52169307b4f4e",
    "plain/a_prob.png": "d94e518b1968b005",
    "plain/a_summary.json": "5ed9494ccbacb0ae",
    "plain/b_mask.png": "8f0c3cd4ffa9c82b",
    "plain/b_overlay.png": "d01ecaa024713176",
    "plain/b_prob.png": "b16607a836e9ee21",
    "plain/b_summary.json": "d67c7ebae15ed8a0",
    "plain/cohort.csv": "92b0287a1cd5f3f7",
    "plain/slide.geojson": "d1ef7981e77ab011",
    "plain/slide_overlay.png": "fbd173acafecfef1",
    "plain/slide_prob.tif": "767673fcb84adc31",
    "plain/slide_summary.json": "5e28f078652dde2c",
    "resampled/a_mask.png": "def3d65ceb35279d",
    "resampled/a_overlay.png": "cc8fd8ce79cbc932",
    "resampled/a_prob.png": "a9335cd8635ecc96",
    "resampled/a_summary.json": "dc47a35a6d6a8d0d",
    "resampled/b_mask.png": "c7403d9b6b017a1d",
    "resampled/b_overlay.png": "39d98ff2246efa4c",
    "resampled/b_prob.png": "3fc0a84c5eae9a1a",
    "resampled/b_summary.json": "93ee1d51f484c111",
    "resampled/cohort.csv": "687536239b4e3059",
    "resampled/slide.geojson": "a5555f3aaacb12d0",
    "resampled/slide_overlay.png": "4f1d7a66df7b1bec",
    "resampled/slide_prob.tif": "97864324fde49f18",
    "resampled/slide_summary.json": "ca0d0f704fcef1a2",
}


#: Summary keys (and keys of its ``model``) that record the prediction's identity (issue 31).
IDENTITY_KEYS = ("identity", "prediction", "output_bytes")
MODEL_IDENTITY_KEYS = ("weights_sha256", "onnx_sha256", "mean", "std")


def _red(images: np.ndarray) -> np.ndarray:
    return images[..., 0].astype(np.float32) / np.float32(255.0)


def _pattern(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 40 + 80 * (xx / w) + 60 * (yy / h) + 50 * ((xx // 37 + yy // 53) % 2) + rng.normal(0, 8, (h, w))
    rgb = np.stack([r, np.full_like(r, 90), np.full_like(r, 160)], axis=-1)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _comparable(path: Path) -> bytes:
    """The file's bytes, less what changes from run to run (timings, temporary paths, random ids)."""
    data = path.read_bytes()
    if path.name.endswith("_summary.json"):
        summary = json.loads(data)
        for key in ("seconds", "input"):
            summary.pop(key)
        # typed run files (issue 10) add their schema version; the rest is compared with the old hashes
        assert summary.pop("schema_version") == 1
        # what made the outputs (issue 31): tested in test_identity.py, left out of these hashes
        for key in IDENTITY_KEYS:
            summary.pop(key)
        for key in MODEL_IDENTITY_KEYS:
            summary["model"].pop(key)
        return json.dumps(summary, sort_keys=True).encode()
    # overlays by their pixels: their zlib level changed (fast since issue 9), not their content
    if path.name.endswith("_overlay.png"):
        from PIL import Image

        with Image.open(path) as im:
            return f"{im.mode} {im.size}".encode() + im.tobytes()
    if path.suffix == ".geojson":
        return re.sub(rb'"id": *"[0-9a-f-]{36}"', b'"id": ""', data)
    if path.name == "cohort.csv":
        rows = [line.split(",") for line in data.decode().splitlines()]
        drop = {rows[0].index(c) for c in ("slide", "seconds", "model", "weights_sha256", "identity")}
        return "\n".join(",".join(c for i, c in enumerate(r) if i not in drop) for r in rows).encode()
    return data


def output_hashes(root: Path) -> dict[str, str]:
    """Predict a generated slide and an image folder three ways; the outputs' hashes by run/file name."""
    src = root / "in"
    (src / "imgs").mkdir(parents=True)
    synthetic_slide(src / "slide.tif", 768, tissue_fraction=0.4, mpp=0.5, seed=5, tile=128)
    write_png(src / "imgs" / "a.png", _pattern(90, 120, 0))
    write_png(src / "imgs" / "b.png", _pattern(200, 150, 1))
    info = ModelInfo(folder="m", arch="unet", encoder="resnet18", image_size=64, mpp=0.5, threshold=0.45)
    runs = {
        "plain": ([src / "slide.tif", src / "imgs"], PredictOptions(batch_size=3, min_area_um2=20.0)),
        "resampled": ([src / "slide.tif", src / "imgs"], PredictOptions(mpp=0.8, resize=True, overlap=0.4)),
        "nomask": ([src / "slide.tif"], PredictOptions(tissue_mask=False, threshold=0.6, tile=96)),
    }
    hashes = {}
    for key, (inputs, opts) in runs.items():
        out = root / key
        predict_paths(_red, info, inputs, out, opts)
        for f in sorted(out.iterdir()):
            if f.name == "predict_identity.json":  # the run's identity (issue 31), not an output
                continue
            hashes[f"{key}/{f.name}"] = hashlib.sha256(_comparable(f)).hexdigest()[:16]
    return hashes


def test_outputs_are_byte_identical_to_before_the_reorganisation(tmp_path):
    got = output_hashes(tmp_path)
    assert sorted(got) == sorted(EXPECTED)
    assert {k: v for k, v in got.items() if v != EXPECTED[k]} == {}
