"""The viewer's routes: the page, the folder's list, tiles, outlines; nothing else, from nowhere else."""

from __future__ import annotations

import http.client
import io
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree

import numpy as np
import pytest
from PIL import Image

from teachseg.errors import ConfigError
from teachseg.viewer.catalog import load_catalog
from teachseg.viewer.server import Viewer, serve

from .conftest import serving, set_summary

SECRET = "SECRET-MARKER-7f3a"


def _get(url: str, target: str, host: str | None = None, method: str = "GET") -> tuple[int, dict, bytes]:
    """Send ``target`` exactly as given (no normalising of ``..`` or ``%2e``)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=20)
    conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
    conn.putheader("Host", host or parts.netloc)
    conn.endheaders()
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, dict(resp.getheaders()), body


@pytest.fixture(scope="module")
def hostile(predictions: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the predicted folder with a secret file beside it, a link to it inside, a summary naming
    the link, and an unlisted file."""
    folder = Path(shutil.copytree(predictions, tmp_path_factory.mktemp("hostile") / "out"))
    secret = folder.parent / "secret.geojson"
    secret.write_text(SECRET)
    os.symlink(secret, folder / "link.geojson")
    (folder / "clear.geojson").write_text(SECRET)  # not listed anywhere: never served either
    set_summary(folder, "clear", "outputs.geojson", "link.geojson")
    return folder


@pytest.fixture(scope="module")
def hostile_url(hostile: Path) -> Iterator[str]:
    with serving(hostile) as url:
        yield url


TRAVERSALS = [
    "/static/../../secret.geojson",
    "/static/%2e%2e/%2e%2e/secret.geojson",
    "/static/..%2f..%2fsecret.geojson",
    "/%2e%2e/secret.geojson",
    "/../secret.geojson",
    "/secret.geojson",
    "/clear.geojson",
    "/link.geojson",
    "/cohort.csv",
    "/clear_summary.json",
    "//etc/passwd",
    "/etc/passwd",
    "/slide/1/../../secret.geojson",
    "/slide/1/outlines.geojson/../../../secret.geojson",
    "/slide/1/outlines.geojson",  # the summary names a link leading out of the folder
    "/slide/1%2foutlines.geojson",
    "/slide/-1/outlines.geojson",
    "/slide/7/outlines.geojson",
    "/static/viewer.js/../../../secret.geojson",
    "/static/README.md",
    "/static/LICENSE-openseadragon.txt",
    "http://127.0.0.1/secret.geojson",
    "file:///etc/passwd",
    "*",
]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_nothing_outside_the_routes_is_served(hostile_url: str, target: str):
    status, _, body = _get(hostile_url, target)
    assert status in (400, 404), (target, status)
    assert SECRET.encode() not in body and b"root:" not in body


def test_the_pages_files_and_the_folders_own_outlines_are_served(hostile_url: str, hostile: Path):
    status, headers, body = _get(hostile_url, "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in headers["Content-Security-Policy"] and b"viewer.js" in body
    assert headers["X-Content-Type-Options"] == "nosniff"
    status, headers, body = _get(hostile_url, "/static/openseadragon.min.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript") and b"6.1.1" in body[:200]
    status, headers, _ = _get(hostile_url, "/static/images/zoomin_rest.png")
    assert status == 200 and headers["Content-Type"] == "image/png"
    status, _, body = _get(hostile_url, "/slide/0/outlines.geojson")
    assert status == 200 and body == (hostile / "square.geojson").read_bytes()
    status, _, body = _get(hostile_url, "/slide/0/outlines.geojson", method="HEAD")
    assert status == 200 and body == b""


def test_an_output_swapped_for_a_link_after_the_start_is_not_followed(folder_copy: Path):
    viewer = Viewer(load_catalog(folder_copy))
    assert viewer.handle("/slide/0/outlines.geojson").status == 200
    secret = folder_copy.parent / "secret.geojson"
    secret.write_text(SECRET)
    outside_tiff = viewer.catalog.entries[0].slide  # a file that opens as a map, outside the folder
    for name, target in (("square.geojson", secret), ("square_prob.tif", outside_tiff)):
        (folder_copy / name).unlink()
        os.symlink(target, folder_copy / name)
    resp = viewer.handle("/slide/0/outlines.geojson")
    assert resp.status == 404 and SECRET.encode() not in resp.body
    assert json.loads(viewer.handle("/slide/0/info.json").body)["layers"]["probability"] is False


def test_other_hosts_and_methods_are_refused(served: str):
    status, _, body = _get(served, "/api/folder.json", host="evil.example:80")
    assert status == 403 and b"refused" in body
    port = urlsplit(served).port
    assert _get(served, "/api/folder.json", host=f"localhost:{port}")[0] == 200
    assert _get(served, "/api/folder.json", method="POST")[0] == 501
    assert _get(served, "/api/folder.json", method="PUT")[0] == 501


def test_folder_list_names_slides_areas_and_colours(predictions: Path):
    viewer = Viewer(load_catalog(predictions))
    data = json.loads(viewer.handle("/api/folder.json").body)
    assert data["folder"] == str(predictions)
    square, clear = data["slides"]
    assert (square["name"], clear["name"]) == ("square", "clear")
    assert square["tumour_area_mm2"] == pytest.approx(0.049152) and clear["tumour_area_mm2"] == 0
    assert square["mpp"] == 0.5 and square["width"] == 2048 and square["slide_found"]
    assert data["failures"] == [] and data["colours"][-1] == [1.0, [255, 235, 0]]


def test_dzi_tiles_and_values(predictions: Path):
    viewer = Viewer(load_catalog(predictions))
    info = json.loads(viewer.handle("/slide/0/info.json").body)
    assert info["layers"] == {"image": True, "probability": True, "outlines": True}
    sizes = []
    for kind in ("image", "probability"):
        resp = viewer.handle(f"/slide/0/{kind}.dzi")
        root = ElementTree.fromstring(resp.body)
        size = root.find("{http://schemas.microsoft.com/deepzoom/2008}Size")
        sizes.append((root.get("TileSize"), root.get("Overlap"), size.get("Width"), size.get("Height")))
    assert sizes[0] == sizes[1] == ("254", "1", "2048", "1536")
    tile = viewer.handle("/slide/0/image_files/11/3_2.jpeg")
    assert tile.status == 200 and tile.content_type == "image/jpeg" and tile.cacheable
    assert Image.open(io.BytesIO(tile.body)).size == (256, 256)
    tile = viewer.handle("/slide/0/probability_files/11/3_2.png")
    rgba = np.asarray(Image.open(io.BytesIO(tile.body)))
    assert tile.content_type == "image/png" and (rgba[10:, :, 3] == 255).all()
    for missing in (
        "/slide/0/image_files/12/0_0.jpeg",
        "/slide/0/image_files/11/9_0.jpeg",
        "/slide/2/image.dzi",
    ):
        assert viewer.handle(missing).status == 404, missing
    value = json.loads(viewer.handle("/slide/0/value.json?x=700&y=600").body)
    assert value == {"x": 700.0, "y": 600.0, "probability": 1.0}
    assert json.loads(viewer.handle("/slide/0/value.json?x=100&y=600").body)["probability"] == 0.0
    assert viewer.handle("/slide/0/value.json?x=a").status == 400


def test_a_moved_slide_leaves_the_map_and_outlines(moved: Path):
    viewer = Viewer(load_catalog(moved))
    info = json.loads(viewer.handle("/slide/0/info.json").body)
    assert info["layers"] == {"image": False, "probability": True, "outlines": True}
    assert "slide not found" in info["problems"][0] and not info["slide_found"]
    assert viewer.handle("/slide/0/image.dzi").status == 404
    assert viewer.handle("/slide/0/probability_files/11/3_2.png").status == 200


def test_a_different_slide_at_the_recorded_path_is_not_shown(folder_copy: Path, tmp_path: Path):
    from teachseg.data.synth_slide import write_pyramid_rgb

    other = write_pyramid_rgb(
        tmp_path / "s.tif", np.full((600, 500, 3), 200, np.uint8), tile=128, min_side=128
    )
    set_summary(folder_copy, "square", "input", str(other))
    log: list[str] = []
    viewer = Viewer(load_catalog(folder_copy), log=log.append)
    info = json.loads(viewer.handle("/slide/0/info.json").body)
    assert not info["layers"]["image"] and info["layers"]["probability"]
    assert "is 500x600 px but was 2048x1536 px when predicted" in info["problems"][0]
    viewer.handle("/slide/0/info.json")
    assert log == [f"square: {info['problems'][0]}"]  # logged once


def test_a_port_in_use_is_a_one_line_error(predictions: Path):
    viewer = Viewer(load_catalog(predictions))
    first = serve(viewer)
    try:
        with pytest.raises(ConfigError, match=r"cannot listen on 127\.0\.0\.1:\d+ .*--port"):
            serve(viewer, port=first.server_address[1])
    finally:
        first.server_close()


def test_a_tile_that_fails_is_an_error_answer_and_a_log_line(folder_copy: Path, tmp_path: Path):
    catalog = load_catalog(folder_copy)
    slide = Path(shutil.copy(catalog.entries[0].slide, tmp_path / "copy.tif"))
    catalog.entries[0].slide = slide
    log: list[str] = []
    viewer = Viewer(catalog, log=log.append)
    assert viewer.handle("/slide/0/image_files/11/0_0.jpeg").status == 200
    slide.write_bytes(slide.read_bytes()[:2000])  # truncated while open
    resp = viewer.handle("/slide/0/image_files/11/4_3.jpeg")
    assert resp.status == 500 and log and "image_files/11/4_3.jpeg" in log[0]


def test_an_ordinary_images_prediction_is_shown_without_outlines(tmp_path: Path):
    from teachseg.io import write_png

    from .conftest import TISSUE, TUMOUR, predict_folder

    image = np.full((180, 240, 3), TISSUE, np.uint8)
    image[40:140, 60:180] = TUMOUR
    out = predict_folder([write_png(tmp_path / "photo.png", image)], tmp_path / "out")
    viewer = Viewer(load_catalog(out))
    info = json.loads(viewer.handle("/slide/0/info.json").body)
    assert info["kind"] == "image" and info["problems"] == []
    assert info["layers"] == {"image": True, "probability": True, "outlines": False}
    top = ElementTree.fromstring(viewer.handle("/slide/0/image.dzi").body)
    assert ElementTree.fromstring(viewer.handle("/slide/0/probability.dzi").body)[0].attrib == top[0].attrib
    level = 8  # 240 x 180 px: Deep Zoom level 8 is full size, one tile
    rgb = np.asarray(Image.open(io.BytesIO(viewer.handle(f"/slide/0/image_files/{level}/0_0.jpeg").body)))
    alpha = np.asarray(
        Image.open(io.BytesIO(viewer.handle(f"/slide/0/probability_files/{level}/0_0.png").body))
    )
    assert rgb.shape[:2] == alpha.shape[:2] == (180, 240)
    want = np.zeros((180, 240), bool)
    want[40:140, 60:180] = True
    assert np.array_equal(alpha[..., 3] >= 128, want)
    assert viewer.handle("/slide/0/outlines.geojson").status == 404
