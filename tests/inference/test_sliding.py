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
