"""The sliding-window inferer, the options resolved once per run, and the progress callbacks."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from teachseg.inference.blending import RawRaster
from teachseg.inference.options import ModelInfo, PredictOptions, resolve_options
from teachseg.inference.quantise import threshold_u8, to_uint8
from teachseg.inference.run import predict_paths
from teachseg.inference.sliding import SlidingWindowInferer, gaussian_blender
from teachseg.io import write_png
from teachseg.wsi.readers import ArrayReader
from teachseg.wsi.resolution import SOURCE_IGNORED, SOURCE_METADATA, SOURCE_MODEL_NONE, SOURCE_OPTION
from teachseg.wsi.tiling import gaussian_weight

from .conftest import pattern_image

MODEL = ModelInfo(folder="m", arch="unet", encoder="resnet18", image_size=64, mpp=0.5, threshold=0.45)


def _red(images: np.ndarray) -> np.ndarray:
    return images[..., 0].astype(np.float32) / np.float32(255.0)


def test_inferer_gives_back_the_red_channel(tmp_path):
    image = pattern_image(150, 210)
    inferer = SlidingWindowInferer(_red, gaussian_blender(0.5), tile=64, overlap=0.25, batch_size=3)
    tiles = inferer.grid(150, 210)
    done: list[int] = []
    raster = RawRaster(tmp_path / "p.u8", 150, 210)
    blender = inferer(ArrayReader(image), 0, tiles, raster, done.append)
    got = raster.read_rows(0, 150).astype(int)
    raster.close()
    assert sum(done) == len(tiles) and max(done) <= 3
    assert np.abs(got - image[..., 0].astype(int)).max() <= 1
    assert blender.positive_pixels == int((got >= threshold_u8(0.5)).sum())


def _tile_mean_red(images: np.ndarray) -> np.ndarray:
    """Each tile's prediction is its mean red value everywhere: overlapping tiles disagree."""
    mean = images[..., 0].astype(np.float32).mean(axis=(1, 2), keepdims=True) / np.float32(255.0)
    return np.broadcast_to(mean, images.shape[:3]).astype(np.float32)


def test_inferer_blends_disagreeing_tiles_by_their_gaussian_weights(tmp_path):
    """Every tile gives its own constant; the merged map is, at each pixel, the Gaussian-weighted mean of the
    constants of the tiles covering it (tile centres trusted more than borders), computed here on the whole
    canvas from the tiles' positions. Equal weights, or a tile blended at another position, differ."""
    h, w, tile = 150, 210, 64
    image = pattern_image(h, w)
    inferer = SlidingWindowInferer(
        _tile_mean_red, gaussian_blender(0.5), tile=tile, overlap=0.5, batch_size=4
    )
    tiles = inferer.grid(h, w)
    raster = RawRaster(tmp_path / "p.u8", h, w)
    inferer(ArrayReader(image), 0, tiles, raster)
    got = raster.read_rows(0, h).astype(np.float64)
    raster.close()

    padded = np.full((h + tile, w + tile), 255.0)  # the reader is white outside the image
    padded[:h, :w] = image[..., 0]
    weight = gaussian_weight(tile).astype(np.float64)
    acc, wsum = np.zeros_like(padded), np.zeros_like(padded)
    for t in tiles:
        acc[t.y : t.y + tile, t.x : t.x + tile] += weight * padded[t.y : t.y + tile, t.x : t.x + tile].mean()
        wsum[t.y : t.y + tile, t.x : t.x + tile] += weight
    want = np.rint(acc[:h, :w] / wsum[:h, :w])
    assert np.abs(got - want).max() <= 1
    plain = np.rint(_equal_weight_blend(padded, tiles, tile)[:h, :w])
    assert np.abs(plain - want).max() > 5  # equal weights would give another map: the test can tell


def _equal_weight_blend(padded: np.ndarray, tiles, tile: int) -> np.ndarray:
    acc, n = np.zeros_like(padded), np.zeros_like(padded)
    for t in tiles:
        acc[t.y : t.y + tile, t.x : t.x + tile] += padded[t.y : t.y + tile, t.x : t.x + tile].mean()
        n[t.y : t.y + tile, t.x : t.x + tile] += 1
    return acc / np.maximum(n, 1)


def test_options_resolve_once_from_the_model():
    ro = resolve_options(PredictOptions(), MODEL)
    assert (ro.tile, ro.threshold, ro.mpp, ro.resize_images) == (64, 0.45, 0.5, False)
    assert ro.threshold_u8 == threshold_u8(0.45) and ro.slide_mpp_source == SOURCE_METADATA
    assert ro.image_mpp_source == SOURCE_IGNORED and not ro.slides_at_level0_as_they_are
    with pytest.raises(dataclasses.FrozenInstanceError):
        ro.tile = 1  # type: ignore[misc]
    given = resolve_options(PredictOptions(tile=96, threshold=0.6, mpp=1.0, slide_mpp=0.25), MODEL)
    assert (given.tile, given.threshold, given.mpp, given.slide_mpp_source) == (96, 0.6, 1.0, SOURCE_OPTION)
    no_mpp = resolve_options(PredictOptions(), dataclasses.replace(MODEL, mpp=None))
    assert no_mpp.resize_images and no_mpp.image_mpp_source == SOURCE_MODEL_NONE
    assert no_mpp.slides_at_level0_as_they_are


def test_quantise_rounds_half_to_even_and_thresholds_from_above():
    p = np.array([0.0, 0.5 / 255, 1.5 / 255, 0.5, 1.0, 1.2, -0.1], np.float32)
    assert to_uint8(p).tolist() == [0, 0, 2, 128, 255, 255, 0]
    assert [threshold_u8(t) for t in (0.0, 0.5, 0.45, 1.0)] == [0, 128, 115, 255]


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def on_start(self, total: int) -> None:
        self.calls.append(("start", total))

    def on_item(self, index: int, name: str) -> None:
        self.calls.append(("item", (index, name)))

    def on_tiles(self, total: int) -> None:
        self.calls.append(("tiles", total))

    def on_advance(self, n: int) -> None:
        self.calls.append(("advance", n))

    def on_finish(self) -> None:
        self.calls.append(("finish", None))


def test_progress_callbacks_follow_the_inputs_and_their_tiles(tmp_path):
    src = tmp_path / "imgs"
    src.mkdir()
    write_png(src / "a.png", pattern_image(90, 120))
    write_png(src / "b.png", pattern_image(64, 64))
    rec = Recorder()
    predict_paths(_red, MODEL, [src], tmp_path / "out", PredictOptions(batch_size=2), progress=rec)
    kinds = [k for k, _ in rec.calls]
    assert rec.calls[0] == ("start", 2) and rec.calls[-1] == ("finish", None)
    assert [v for k, v in rec.calls if k == "item"] == [(0, "a"), (1, "b")]
    b = kinds.index("item", 2)
    for part in (rec.calls[1:b], rec.calls[b:-1]):
        (total,) = [v for k, v in part if k == "tiles"]
        assert sum(v for k, v in part if k == "advance") == total  # type: ignore[misc]


def test_inference_draws_nothing_itself():
    code = (
        "import sys, teachseg.inference.run, teachseg.inference.images, teachseg.wsi.readers; "
        "print(any(m == 'rich' or m.startswith('rich.') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
