"""Slides: suggested square regions lie in tissue at the stated size, and ``data tile`` reads them back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from teachseg.cli import run as cli
from teachseg.errors import ConfigError
from teachseg.suggest.outputs import SUGGEST_JSON, read_suggestions
from teachseg.suggest.slides import ANNOTATE_NEXT, SlideOptions, suggest_slides
from teachseg.suggest.source import open_source

MODEL_MPP = 1.0  # the slide is at 0.5 um/px: regions are read on a virtual level, downsample 2
SIDE = 64  # the model's image_size: a region is 64 model pixels, 128 level-0 pixels


@pytest.fixture(scope="module")
def slide(tmp_path_factory) -> Path:
    from teachseg.data.synth_slide import synthetic_slide

    path = tmp_path_factory.mktemp("slide") / "slide.tif"
    synthetic_slide(path, 512, mpp=0.5, seed=5, tile=128)
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    import torch

    from teachseg.models import ModelMeta, build_model, save_model_folder

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("model") / "model"
    meta = ModelMeta("linknet", "resnet18", SIDE, mpp=MODEL_MPP)
    return save_model_folder(build_model("linknet", "resnet18"), folder, meta)


@pytest.fixture(scope="module")
def suggested(slide, model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("suggest")
    suggest_slides(open_source(model), [slide], 3, out, opts=SlideOptions(min_tissue=0.5), seed=0)
    return out


def _regions(out: Path, slide: Path) -> list[dict]:
    return json.loads((out / f"{slide.stem}_annotate_next.geojson").read_text())["features"]


def _tissue_share(slide: Path, box: tuple[float, float, float, float]) -> float:
    from teachseg.wsi.readers import open_slide
    from teachseg.wsi.tissue import detect_tissue

    with open_slide(slide) as r:
        thumb, ds = r.thumbnail(2048)
    tissue = detect_tissue(thumb)
    x0, y0, x1, y1 = (round(v / ds) for v in box)
    return float(tissue[y0:y1, x0:x1].mean())


def test_regions_lie_in_tissue_at_the_stated_size(suggested, slide):
    from shapely.geometry import shape

    regions = _regions(suggested, slide)
    assert len(regions) == 3
    boxes = [shape(f["geometry"]) for f in regions]
    for f, b in zip(regions, boxes, strict=True):
        assert f["properties"]["classification"]["name"] == ANNOTATE_NEXT
        x0, y0, x1, y1 = b.bounds
        assert (x1 - x0, y1 - y0) == (SIDE * 2, SIDE * 2)  # level-0 px at the model's 1 um/px
        assert b.area == pytest.approx((SIDE * 2) ** 2)
        assert _tissue_share(slide, b.bounds) >= 0.5
        assert f["properties"]["measurements"]["Region px"] == SIDE
        assert f["properties"]["measurements"]["Region um/px"] == MODEL_MPP
    assert all(a.intersection(b).area == 0 for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    rows = read_suggestions(suggested / "suggestions.csv")
    assert [f["properties"]["name"] for f in regions] == [f"#{r['rank']}" for r in rows]
    assert [float(r["width"]) for r in rows] == [SIDE * 2.0] * 3
    meta = json.loads((suggested / SUGGEST_JSON).read_text())
    assert f"--mpp {MODEL_MPP:g} --size {SIDE}" in meta["slides"][0]["tile_command"]


def test_regions_are_deterministic(suggested, slide, model, tmp_path):
    suggest_slides(open_source(model), [slide], 3, tmp_path, opts=SlideOptions(min_tissue=0.5), seed=0)
    name = f"{slide.stem}_annotate_next.geojson"
    assert (tmp_path / name).read_bytes() == (suggested / name).read_bytes()


def _export_with_tumour(suggested: Path, slide: Path, folder: Path) -> tuple[Path, list[float]]:
    """What QuPath exports once the user drew a tumour square inside region #1: the regions and the tumour."""
    regions = _regions(suggested, slide)
    xs = [c[0] for c in regions[0]["geometry"]["coordinates"][0]]
    ys = [c[1] for c in regions[0]["geometry"]["coordinates"][0]]
    x0, y0 = min(xs), min(ys)
    square = [x0 + 20, y0 + 30, x0 + 80, y0 + 100]  # level-0 px inside the 128-px region
    a, b, c, d = square
    tumour = {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [[[a, b], [c, b], [c, d], [a, d], [a, b]]]},
        "properties": {"objectType": "annotation", "classification": {"name": "Tumor", "color": [200, 0, 0]}},
    }
    export = folder / "export.geojson"
    export.write_text(json.dumps({"type": "FeatureCollection", "features": [*regions, tumour]}))
    return export, square


def test_data_tile_cuts_exactly_the_regions_with_the_drawn_masks(suggested, slide, tmp_path):
    from PIL import Image

    export, (a, b, c, d) = _export_with_tumour(suggested, slide, tmp_path)
    out = tmp_path / "tiles"
    args = [
        "data",
        "tile",
        str(slide),
        "--annotations",
        str(export),
        "--mpp",
        str(MODEL_MPP),
        "--size",
        str(SIDE),
    ]
    assert cli([*args, "--out", str(out)]) == 0
    rows = read_suggestions(suggested / "suggestions.csv")
    assert sorted(p.stem for p in (out / "images").iterdir()) == sorted(r["id"] for r in rows)
    assert not (out / "unlabelled").exists() or not any((out / "unlabelled").iterdir())
    first = np.asarray(Image.open(out / "masks" / f"{rows[0]['id']}.png"))
    expected = np.zeros((SIDE, SIDE), np.uint8)
    expected[
        round(b / 2 - float(rows[0]["y"]) / 2) : round(d / 2 - float(rows[0]["y"]) / 2),
        round(a / 2 - float(rows[0]["x"]) / 2) : round(c / 2 - float(rows[0]["x"]) / 2),
    ] = 255
    np.testing.assert_array_equal(first, expected)
    for r in rows[1:]:  # nothing drawn there: labelled, no tumour
        assert not np.asarray(Image.open(out / "masks" / f"{r['id']}.png")).any()
    manifest = json.loads((out / f"{slide.stem}_tiles.json").read_text())
    assert manifest["downsample"] == pytest.approx(2.0) and manifest["size"] == SIDE
    assert all(t["labelled"] for t in manifest["tiles"])


def test_data_tile_into_the_dataset_folder_moves_the_regions_out_of_the_unlabelled_pool(
    suggested, slide, tmp_path
):
    export, _ = _export_with_tumour(suggested, slide, tmp_path)
    out = tmp_path / "dataset"
    base = ["data", "tile", str(slide), "--mpp", str(MODEL_MPP), "--size", str(SIDE), "--out", str(out)]
    assert cli([*base, "--min-tissue", "0.5"]) == 0  # the first tiling: every tissue tile unlabelled
    before = {p.stem for p in (out / "unlabelled").iterdir()}
    regions = {r["id"] for r in read_suggestions(suggested / "suggestions.csv")}
    assert regions <= before  # suggest and data tile cut the same grid
    assert cli([*base, "--annotations", str(export)]) == 0
    assert {p.stem for p in (out / "images").iterdir()} == regions
    assert {p.stem for p in (out / "unlabelled").iterdir()} == before - regions
    tiles = json.loads((out / f"{slide.stem}_tiles.json").read_text())["tiles"]
    assert {t["name"] for t in tiles} == before
    assert {t["name"] for t in tiles if t["labelled"]} == regions


def test_a_region_smaller_than_the_tiles_is_a_clear_error(suggested, slide, tmp_path, capsys):
    export, _ = _export_with_tumour(suggested, slide, tmp_path)
    args = ["data", "tile", str(slide), "--annotations", str(export), "--mpp", "1", "--size", "128"]
    assert cli([*args, "--out", str(tmp_path / "t")]) == 2
    assert "smaller than --size 128" in capsys.readouterr().err


def test_regions_over_masked_tiles_of_a_run_are_left_out(slide, tmp_path):
    """A run trained on tiles of the slide: no region overlaps its masked tiles; with a validation tile of the
    slide, the slide is left out whole."""
    from teachseg.suggest.slides import OVERLAPS_MASKED_TILE, SLIDE_HELD_OUT
    from tests.suggest.runs import make_run

    data = tmp_path / "data"
    ann = tmp_path / "ann.geojson"
    tumour = [[0, 250], [200, 250], [200, 400], [0, 400], [0, 250]]  # the tissue's left part is annotated
    ann.write_text(
        json.dumps(
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [tumour]},
                "properties": {"classification": {"name": "Tumor"}},
            }
        )
    )
    tile = ["data", "tile", str(slide), "--mpp", str(MODEL_MPP), "--size", str(SIDE), "--min-tissue", "0.2"]
    assert cli([*tile, "--annotations", str(ann), "--out", str(data)]) == 0
    run = make_run(tmp_path / "run", data, mpp=MODEL_MPP)
    source = open_source(run.path)
    masked = run.split["train"]
    assert masked and not run.held_out  # one slide, one group: its masked tiles all train
    out = tmp_path / "out"
    opts = SlideOptions(min_tissue=0.2)
    chosen = suggest_slides(source, [slide], 2, out, opts=opts)
    meta = json.loads((out / SUGGEST_JSON).read_text())
    left = set(meta["excluded"][OVERLAPS_MASKED_TILE])
    assert {Path(i).stem for i in masked} <= left  # the regions on the masked tiles themselves
    assert not {s.id for s in chosen} & left
    assert all(s.region[0] >= 256 for s in chosen)  # right of the masked tiles

    split = json.loads((run.path / "split.json").read_text())
    split["val"], split["train"] = split["train"][:1], split["train"][1:]
    (run.path / "split.json").write_text(json.dumps(split))
    with pytest.raises(ConfigError, match="larger than the pool of 0 tissue regions"):
        suggest_slides(open_source(run.path), [slide], 1, tmp_path / "out2", opts=opts)
    from teachseg.suggest.pool import Pool
    from teachseg.suggest.slides import open_plan, slide_hygiene
    from teachseg.wsi.readers import open_slide

    with open_slide(slide) as reader:
        plan = open_plan(reader, MODEL_MPP, SIDE, opts)
    pool = Pool([])
    assert slide_hygiene(plan, open_source(run.path).run, pool) == []
    assert len(pool.excluded[SLIDE_HELD_OUT]) == len(plan.tiles)


def test_two_slides_of_one_name_are_refused(slide, model, tmp_path):
    import shutil

    from teachseg.errors import DataError

    twin = tmp_path / "other" / slide.name
    twin.parent.mkdir()
    shutil.copy(slide, twin)
    with pytest.raises(DataError, match="two slides are named 'slide'"):
        suggest_slides(open_source(model), [slide, twin], 1, tmp_path / "out")
