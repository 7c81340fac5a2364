"""Tiles cut at one size and trained at another: the model records the scale the network saw, and predict
reads slides at it (``data tile`` -> ``train`` -> ``predict``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from teachseg.cli import run
from tests.cli.conftest import one_error_line

SLIDE_MPP = 0.5
IMAGE_SIZE = 64


def _tumour_square(slide: Path, folder: Path) -> Path:
    """QuPath-style GeoJSON: a 240 px tumour square at the slide's centre (level-0 pixels)."""
    ring = [[136, 136], [376, 136], [376, 376], [136, 376], [136, 136]]
    feature = {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"classification": {"name": "Tumor"}},
    }
    path = folder / f"{slide.stem}.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    return path


def _tile(slide: Path, out: Path, size: int) -> None:
    ann = _tumour_square(slide, out.parent)
    args = ["data", "tile", str(slide), "--annotations", str(ann), "--out", str(out), "--size", str(size)]
    assert run([*args, "--min-tissue", "0"]) == 0


@pytest.mark.slow  # two trainings and predictions: ~20 s each on 2 cores
@pytest.mark.parametrize("tile_size", [IMAGE_SIZE, 2 * IMAGE_SIZE])
def test_model_records_the_scale_the_network_saw_and_predict_reads_slides_at_it(
    tmp_path: Path, slide: Path, write_config, tile_size: int
) -> None:
    tiles = tmp_path / "tiles"
    _tile(slide, tiles, tile_size)
    assert json.loads((tiles / "slide_tiles.json").read_text())["mpp"] == SLIDE_MPP
    # one slide: each tile its own group (by its position), so that some can validate
    data = {"image_size": IMAGE_SIZE, "val_fraction": 0.25, "group_regex": r"_(x\d+_y\d+)\."}
    cfg = write_config(tiles, data=data)
    assert run(["train", str(cfg)]) == 0
    model = tmp_path / "runs" / "tiny" / "model"
    seen = SLIDE_MPP * tile_size / IMAGE_SIZE  # 0.5 um/px tiles of 128 px at 64 px: seen at 1.0 um/px
    assert json.loads((model / "teachseg.json").read_text())["mpp"] == pytest.approx(seen)

    out = tmp_path / "pred"
    assert run(["predict", str(model), str(slide), "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "slide_summary.json").read_text())
    assert summary["mpp_used"] == pytest.approx(seen) and summary["mpp_source"] == "slide metadata"
    # the slide is predicted on a grid of the model's um/px: 512 px at 0.5 um/px is 256 px at 1.0
    assert summary["predict_width"] == round(512 * SLIDE_MPP / seen)


def test_tiles_of_two_scales_are_refused_before_training(
    tmp_path: Path, slide: Path, write_config, capsys: pytest.CaptureFixture[str]
) -> None:
    tiles = tmp_path / "tiles"
    other = tmp_path / "other.tif"
    shutil.copy(slide, other)
    _tile(slide, tiles, IMAGE_SIZE)
    _tile(other, tiles, 2 * IMAGE_SIZE)  # same resolution, twice the side: seen at twice the um/px
    capsys.readouterr()
    cfg = write_config(tiles, data={"image_size": IMAGE_SIZE})
    assert run(["train", str(cfg)]) == 2
    err = one_error_line(capsys)
    assert "slide_tiles.json has 64 px tiles at 0.5 um/px, seen at 0.5 um/px" in err
    assert "other_tiles.json has 128 px tiles at 0.5 um/px, seen at 1 um/px" in err
    assert "teachseg data tile --mpp X --size N" in err
    assert not (tmp_path / "runs" / "tiny" / "model").exists()
