"""A known pattern through the whole sliding-window path must come back unchanged, seams included."""

import numpy as np
import pytest

from teachseg.data.synth_slide import write_pyramid_rgb
from teachseg.inference.blending import BandBlender, RawRaster
from teachseg.inference.predictor import Predictor
from teachseg.inference.sliding import stitch
from teachseg.wsi.readers import open_slide
from teachseg.wsi.tiling import gaussian_weight, tile_grid

from .conftest import EchoRed, pattern_image


@pytest.mark.parametrize("level,tile,overlap", [(0, 96, 0.25), (1, 64, 0.5), (0, 128, 0.0)])
def test_stitched_map_matches_the_pattern(tmp_path, level, tile, overlap):
    image = pattern_image(700, 520)
    path = write_pyramid_rgb(tmp_path / "p.tif", image, mpp=0.5, tile=128, compression="zlib", min_side=128)
    predictor = Predictor(EchoRed(), mean=(0, 0, 0), std=(1, 1, 1), device="cpu", precision="bf16", tta=True)
    with open_slide(path) as reader:
        lv = reader.levels[level]
        truth = reader.read(level, 0, 0, lv.width, lv.height)[..., 0]
        raster = RawRaster(tmp_path / "out.u8", lv.height, lv.width)
        blender = BandBlender(raster, tile, gaussian_weight(tile))
        stitch(
            reader,
            level,
            tile_grid(lv.height, lv.width, tile, overlap),
            predictor,
            blender,
            tile,
            batch_size=5,
        )
    got = raster.read_rows(0, lv.height).astype(int)
    diff = np.abs(got - truth.astype(int))
    assert diff.max() <= 1, diff.max()  # 8-bit rounding only: no seams anywhere
