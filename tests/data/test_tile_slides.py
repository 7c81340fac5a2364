"""Cutting training tiles from a slide: ``teachseg data tile`` and its deprecated alias ``teachseg tile``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from teachseg.cli import run


@pytest.fixture(scope="module")
def slide(tmp_path_factory) -> Path:
    from teachseg.data.synth_slide import synthetic_slide

    path = tmp_path_factory.mktemp("s") / "slide.tif"
    synthetic_slide(path, 512, mpp=0.5, seed=5, tile=128)
    return path


def _annotate_square_with_hole(slide: Path, folder: Path) -> tuple[int, int, Path]:
    """A tumour square with a hole around the tissue's centre (level 0); returns its centre and the file."""
    from teachseg.wsi.readers import open_slide
    from teachseg.wsi.tissue import detect_tissue

    with open_slide(slide) as r:
        thumb, ds = r.thumbnail(64)
    ys, xs = np.nonzero(detect_tissue(thumb))
    cy, cx = int(ys.mean() * ds), int(xs.mean() * ds)

    def square(half: int) -> list[list[int]]:
        return [
            [cx - half, cy - half],
            [cx + half, cy - half],
            [cx + half, cy + half],
            [cx - half, cy + half],
            [cx - half, cy - half],
        ]

    feature = {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [square(150), square(20)]},
        "properties": {"objectType": "annotation", "classification": {"name": "Tumor", "color": [200, 0, 0]}},
    }
    ann = folder / "ann.geojson"
    ann.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    return cx, cy, ann


def _tile_args(slide: Path, ann: Path, out: Path) -> list[str]:
    return [str(slide), "--annotations", str(ann), "--out", str(out), "--size", "64", "--min-tissue", "0.2"]


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_data_tile_with_annotations(tmp_path, slide, capsys):
    from PIL import Image

    cx, cy, ann = _annotate_square_with_hole(slide, tmp_path)
    out = tmp_path / "tiles"
    assert run(["data", "tile", *_tile_args(slide, ann, out)]) == 0
    images = sorted(p.name for p in (out / "images").iterdir())
    assert images and images == sorted(p.name for p in (out / "masks").iterdir())
    assert list((out / "unlabelled").iterdir())
    masks = [np.asarray(Image.open(out / "masks" / n)) for n in images]
    assert all(set(np.unique(m)) <= {0, 255} for m in masks)
    assert any(m.mean() > 0 for m in masks)
    # the tile at the hole's centre is tumour around an empty middle
    manifest = json.loads((out / "slide_tiles.json").read_text())
    centre = [
        t
        for t in manifest["tiles"]
        if t["labelled"] and t["x"] <= cx < t["x"] + 64 and t["y"] <= cy < t["y"] + 64
    ]
    if centre:
        m = np.asarray(Image.open(out / "masks" / f"{centre[0]['name']}.png"))
        assert m[int(cy - centre[0]["y"]), int(cx - centre[0]["x"])] == 0
    captured = capsys.readouterr()
    assert "labelled tiles" in captured.out and "deprecated" not in captured.err


def test_tile_alias_is_deprecated_but_does_the_same(tmp_path, slide, capsys):
    _, _, ann = _annotate_square_with_hole(slide, tmp_path)
    assert run(["data", "tile", *_tile_args(slide, ann, tmp_path / "new")]) == 0
    new = capsys.readouterr()
    assert run(["tile", *_tile_args(slide, ann, tmp_path / "old")]) == 0
    old = capsys.readouterr()
    assert _tree(tmp_path / "old") == _tree(tmp_path / "new")
    assert old.out.replace(str(tmp_path / "old"), "OUT") == new.out.replace(str(tmp_path / "new"), "OUT")
    note = old.err.strip().splitlines()
    assert len(note) == 1 and "deprecated" in note[0] and "teachseg data tile" in note[0]
    assert new.err.strip() == ""


def test_tile_alias_is_hidden_from_help(capsys):
    assert run(["--help"]) == 0
    listed = capsys.readouterr().out
    assert "predict" in listed and not any(
        line.strip("│ ").startswith("tile ") for line in listed.splitlines()
    )
    assert run(["data", "--help"]) == 0
    assert "tile" in capsys.readouterr().out
