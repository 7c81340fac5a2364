"""``teachseg data tile --mpp X`` cuts tiles at exactly X um/px, as ``predict`` reads slides.

The analytic slide of ``tests/wsi/test_resolution.py`` (a red disc and square on stripes of 0.25 um that
average to a dull red once seen at 0.5 um/px) is scanned at 0.25 or 0.2 um/px with levels 4x apart (0.25 /
1.0 / 4.0: they bracket 0.5) and tiled at 0.5 um/px. Its tiles must cover the same micrometres and show the
same tumour as the tiles of the same tissue scanned at exactly 0.5 um/px, and their masks must match them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from teachseg.cli import run
from tests.wsi.test_resolution import _slide

SIZE = 64
MPP = 0.5


def _annotations(path: Path, mpp0: float) -> Path:
    """The drawn tumour (disc and square, micrometres) as QuPath GeoJSON in the scan's level-0 pixels."""
    t = np.linspace(0, 2 * np.pi, 257)
    disc = [[(150 + 90 * np.cos(a)) / mpp0, (150 + 90 * np.sin(a)) / mpp0] for a in t]
    sq = [[230, 40], [350, 40], [350, 160], [230, 160], [230, 40]]
    square = [[x / mpp0, y / mpp0] for x, y in sq]
    features = [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]}, "properties": {}}
        for ring in (disc, square)
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def _tile(tmp: Path, mpp0: float, factor: int, *extra: str) -> tuple[dict, dict[tuple[float, float], tuple]]:
    """Tile a scan at ``mpp0``; returns the manifest and {(x um, y um): (image, mask or None)}."""
    from PIL import Image

    slide = _slide(tmp / "scan.tif", mpp0, factor=factor)
    ann = _annotations(tmp / "ann.geojson", mpp0)
    out = tmp / "tiles"
    args = ["data", "tile", str(slide), "--annotations", str(ann), "--out", str(out), "--size", str(SIZE)]
    assert run([*args, "--min-tissue", "0", *extra]) == 0
    manifest = json.loads((out / "scan_tiles.json").read_text())
    tiles = {}
    for t in manifest["tiles"]:
        folder = "images" if t["labelled"] else "unlabelled"
        image = np.asarray(Image.open(out / folder / f"{t['name']}.png"))
        mask = np.asarray(Image.open(out / "masks" / f"{t['name']}.png")) if t["labelled"] else None
        tiles[(round(t["x"] * mpp0, 3), round(t["y"] * mpp0, 3))] = (image, mask)
    return manifest, tiles


def _tumour(image: np.ndarray) -> np.ndarray:
    # the drawn tumour is red 235; the stripes average 100 at 0.5 um/px, but show 70 / 130 at 0.25 um/px
    return image[..., 0] > 127


def _false_tumour(tiles: dict) -> float:
    """The share of the pixels outside the annotated tumour that look like tumour."""
    outside = [
        _tumour(im)[mask == 0] if mask is not None else _tumour(im).ravel() for im, mask in tiles.values()
    ]
    return float(np.concatenate(outside).mean())


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[dict, dict]:
    """The tissue scanned at exactly 0.5 um/px, tiled at its level 0."""
    manifest, tiles = _tile(tmp_path_factory.mktemp("ref"), MPP, 2, "--mpp", str(MPP))
    assert manifest["level"] == 0 and not manifest["resampled"] and manifest["mpp"] == pytest.approx(MPP)
    return manifest, tiles


@pytest.mark.parametrize("mpp0", [0.25, 0.2])
def test_tiles_are_cut_at_the_requested_resolution(tmp_path, reference, mpp0):
    manifest, tiles = _tile(tmp_path, mpp0, 4, "--mpp", str(MPP))
    # the finest level is the only one at least as fine as 0.5 um/px; it is resized to 0.5 um/px
    assert manifest["level"] == 0 and manifest["level_downsample"] == 1.0 and manifest["resampled"]
    assert manifest["mpp"] == pytest.approx(MPP) and manifest["mpp_source"] == "slide metadata"
    assert manifest["downsample"] == pytest.approx(MPP / mpp0)
    # a tile covers SIZE * 0.5 um of the slide whatever the scan
    assert SIZE * manifest["downsample"] * mpp0 == pytest.approx(SIZE * MPP)
    ref_tiles = reference[1]
    # tiles at the same places in micrometres (tissue detection may differ by a tile or so at the edges)
    common = sorted(set(tiles) & set(ref_tiles))
    assert len(common) >= 0.9 * max(len(tiles), len(ref_tiles)) and len(common) >= 40
    got = np.array([_tumour(tiles[k][0]).mean() for k in common])
    want = np.array([_tumour(ref_tiles[k][0]).mean() for k in common])
    assert got.mean() == pytest.approx(want.mean(), rel=0.03)
    assert np.abs(got - want).max() < 0.05
    assert _false_tumour(tiles) < 0.02
    for image, mask in tiles.values():
        assert image.shape == (SIZE, SIZE, 3)
        if mask is not None:  # the masks, rasterised at the tiles' scale, match their images
            assert mask.shape == (SIZE, SIZE) and set(np.unique(mask)) <= {0, 255}
            assert ((mask > 0) == _tumour(image)).mean() > 0.97


def test_level_zero_as_it_is_has_the_wrong_scale(tmp_path, reference):
    """What the resizing fixes: without --mpp level 0 at 0.25 um/px shows the stripes as tumour."""
    manifest, tiles = _tile(tmp_path, 0.25, 4)
    assert not manifest["resampled"] and manifest["mpp"] == 0.25 and manifest["mpp_source"] == "no --mpp"
    assert _false_tumour(tiles) > 0.3  # below 0.02 once resized to 0.5 um/px


def test_slide_without_resolution_needs_slide_mpp(tmp_path, capsys):
    slide = _slide(tmp_path / "nompp.tif", 0.25, factor=4, write_mpp=False)
    base = ["data", "tile", str(slide), "--size", str(SIZE), "--min-tissue", "0", "--mpp", str(MPP)]
    assert run([*base, "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1
        and "nompp.tif" in err[0]
        and "--slide-mpp VALUE" in err[0]
        and "Traceback" not in err[0]
    )
    assert run([*base, "--out", str(tmp_path / "b"), "--slide-mpp", "0.25", "--ignore-mpp"]) == 2
    assert "contradict" in capsys.readouterr().err
    assert run([*base, "--out", str(tmp_path / "c"), "--slide-mpp", "0.25"]) == 0
    assert "0.5 um/px" in capsys.readouterr().out
    m = json.loads((tmp_path / "c" / "nompp_tiles.json").read_text())
    assert m["mpp_source"] == "--slide-mpp" and m["mpp"] == pytest.approx(MPP) and m["resampled"]
    assert run([*base, "--out", str(tmp_path / "d"), "--ignore-mpp"]) == 0
    m = json.loads((tmp_path / "d" / "nompp_tiles.json").read_text())
    assert m["mpp_source"] == "ignored" and m["mpp"] is None and m["level"] == 0 and not m["resampled"]
