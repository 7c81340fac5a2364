"""The viewer in headless Chromium: deeper tiles load as one zooms in, and the probability map and outlines lie
over the slide's tumour square to within one tile pixel, at two zoom levels (pixel checks on screenshots).

Driven with Playwright's Python package on the system's Chromium (never a downloaded browser).
"""

from __future__ import annotations

import io
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import GLASS, SQUARE, TISSUE, TUMOUR, serving

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
YELLOW = (255, 235, 0)  # the colour map at probability 1
RED = (200, 0, 0)  # the GeoJSON's classification colour
BACKGROUND = (221, 221, 221)  # the page around the slide
TILE_LEVEL = re.compile(r"/slide/\d+/(image|probability)_files/(\d+)/")

READY = """() => {
  const s = window.teachsegView;
  if (!s || !s.viewer || !s.info || s.viewer.world.getItemCount() === 0) return false;
  const layers = s.info.layers;
  const want = layers.image && layers.probability ? 2 : 1;
  const items = [...Array(s.viewer.world.getItemCount()).keys()].map((i) => s.viewer.world.getItemAt(i));
  // the zoom and pan animations have ended, and every tile of every layer on screen is loaded
  const vp = s.viewer.viewport;
  const still = vp.getZoom(true) === vp.getZoom(false) && vp.getCenter(true).equals(vp.getCenter(false));
  return still && items.length === want && items.every((i) => i.getFullyLoaded())
    && (!layers.outlines || !!s.outlines);
}"""
GEOMETRY = """([x0, y0, x1, y1]) => {
  const s = window.teachsegView, item = s.viewer.world.getItemAt(0);
  const a = item.imageToViewerElementCoordinates(new OpenSeadragon.Point(x0, y0));
  const b = item.imageToViewerElementCoordinates(new OpenSeadragon.Point(x1, y1));
  const drawn = item.lastDrawn.map((t) => t.level);
  const hide = [s.viewer.navigator.element, s.viewer.buttonGroup.element].map((e) => {
    const r = e.getBoundingClientRect(), v = s.viewer.element.getBoundingClientRect();
    return [r.left - v.left, r.top - v.top, r.right - v.left, r.bottom - v.top];
  });
  return { rect: [a.x, a.y, b.x, b.y], drawn: Math.max(...drawn), levels: item.source.maxLevel, hide };
}"""
REDRAWN = """() => new Promise((done) => {
  window.teachsegView.viewer.forceRedraw();
  requestAnimationFrame(() => requestAnimationFrame(() => done(true)));
})"""


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if CHROMIUM is None:
        pytest.skip("headless Chromium not installed (apt-get install chromium; .ci/run installs it)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright not installed (pip install -e '.[dev]')"
    )
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


class Page:
    """A browser tab on the viewer that records tile requests and console errors."""

    def __init__(self, browser: object, url: str):
        self.page = browser.new_page(viewport={"width": 1200, "height": 860})  # type: ignore[attr-defined]
        self.levels: list[tuple[str, int]] = []
        self.errors: list[str] = []
        self.page.on("request", self._request)
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url)
        self.wait()

    def _request(self, request: object) -> None:
        m = TILE_LEVEL.search(request.url)  # type: ignore[attr-defined]
        if m:
            self.levels.append((m.group(1), int(m.group(2))))

    def wait(self) -> None:
        self.page.wait_for_function(READY, timeout=30_000)
        self.page.evaluate(REDRAWN)

    def layers(self, probability: bool, outlines: bool) -> None:
        for box, on in (("#show-probability", probability), ("#show-outlines", outlines)):
            if self.page.is_checked(box) != on:
                self.page.click(box)
        self.page.evaluate(REDRAWN)

    def shot(self) -> np.ndarray:
        png = self.page.locator("#view").screenshot()
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int32)

    def geometry(self) -> dict:
        return self.page.evaluate(GEOMETRY, list(SQUARE))


def _nearest(
    image: np.ndarray, colour: tuple[int, int, int], others: list[tuple[int, int, int]]
) -> np.ndarray:
    """Pixels whose nearest colour among ``colour`` and ``others`` is ``colour``."""
    palette = np.array([colour, *others])
    return np.argmin(((image[:, :, None, :] - palette) ** 2).sum(-1), axis=-1) == 0


def _bbox(mask: np.ndarray, hide: list[list[float]]) -> np.ndarray:
    mask = mask.copy()
    for x0, y0, x1, y1 in hide:  # the navigator and the zoom buttons draw over the view
        mask[max(int(y0), 0) : int(np.ceil(y1)), max(int(x0), 0) : int(np.ceil(x1))] = False
    ys, xs = np.nonzero(mask)
    assert len(xs) > 100, "nothing of the colour on screen"
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=float)


def _clip(rect: list[float], shape: tuple[int, ...]) -> np.ndarray:
    x0, y0, x1, y1 = rect
    return np.array([max(x0, 0), max(y0, 0), min(x1, shape[1]), min(y1, shape[0])])


def _check_overlays(page: Page) -> tuple[float, dict]:
    """The slide's square, the probability map's and the outlines' all lie where OpenSeadragon puts the square,
    within one tile pixel (and the outline's stroke half-width); returns that tolerance and the geometry."""
    geo = page.geometry()
    plain = [GLASS, TISSUE, BACKGROUND]
    page.layers(probability=False, outlines=False)
    slide = _bbox(_nearest(page.shot(), TUMOUR, plain), geo["hide"])
    page.layers(probability=True, outlines=False)
    prob = _bbox(_nearest(page.shot(), YELLOW, [*plain, TUMOUR]), geo["hide"])
    page.layers(probability=False, outlines=True)
    outline = _bbox(_nearest(page.shot(), RED, [*plain, TUMOUR]), geo["hide"])
    page.layers(probability=True, outlines=True)

    shot_shape = page.shot().shape
    expected = _clip(geo["rect"], shot_shape)
    zoom = (geo["rect"][2] - geo["rect"][0]) / (SQUARE[2] - SQUARE[0])  # screen px per level-0 px
    tile_px = zoom * 2 ** (geo["levels"] - geo["drawn"])  # screen px per pixel of the tiles drawn
    tol = max(1.0, tile_px)
    assert np.abs(slide - expected).max() <= tol, (
        "the slide's square is not where expected",
        slide,
        expected,
    )
    assert np.abs(prob - slide).max() <= tol, ("probability map off the slide's tumour", prob, slide, tol)
    assert np.abs(outline - slide).max() <= tol + 1, ("outlines off the slide's tumour", outline, slide, tol)
    return tol, geo


def test_zoom_loads_deeper_tiles_and_overlays_lie_over_the_tumour(browser: object, served: str):
    page = Page(browser, served)
    page.page.evaluate("() => { const s = document.getElementById('probability-opacity'); s.value = '100';"
                       " s.dispatchEvent(new Event('input')); }")  # fmt: skip
    tol_home, geo_home = _check_overlays(page)
    assert tol_home <= 1.0 and geo_home["drawn"] < geo_home["levels"]  # the whole slide, from a coarser level
    before = {kind: max(lv for k, lv in page.levels if k == kind) for kind in ("image", "probability")}

    # zoom in with the mouse wheel over the square's centre, as a user does
    x0, y0, x1, y1 = geo_home["rect"]
    box = page.page.locator("#view").bounding_box()
    page.page.mouse.move(box["x"] + (x0 + x1) / 2, box["y"] + (y0 + y1) / 2)
    for _ in range(6):
        page.page.mouse.wheel(0, -100)
        page.page.wait_for_timeout(60)
    page.wait()  # the zoom animation has ended and every tile on screen has loaded
    after = {kind: max(lv for k, lv in page.levels if k == kind) for kind in ("image", "probability")}
    assert after["image"] > before["image"] and after["probability"] > before["probability"], (before, after)

    tol_deep, geo_deep = _check_overlays(page)
    zoom = lambda g: (g["rect"][2] - g["rect"][0]) / (SQUARE[2] - SQUARE[0])  # noqa: E731
    assert zoom(geo_deep) > 2 * zoom(geo_home) and geo_deep["drawn"] == geo_deep["levels"]
    assert page.errors == []


def test_cursor_shows_level0_pixels_micrometres_and_probability(browser: object, served: str):
    page = Page(browser, served)
    box = page.page.locator("#view").bounding_box()
    to_screen = "([x, y]) => { const p = window.teachsegView.viewer.world.getItemAt(0)" \
        ".imageToViewerElementCoordinates(new OpenSeadragon.Point(x, y)); return [p.x, p.y]; }"  # fmt: skip
    for (x, y), prob in (((700, 600), "1.00"), ((600, 480), "0.00")):
        sx, sy = page.page.evaluate(to_screen, [x, y])
        page.page.mouse.move(box["x"] + sx, box["y"] + sy)
        page.page.wait_for_function(
            f"() => document.getElementById('probability-at').textContent === 'tumour probability {prob}'",
            timeout=10_000,
        )
        text = page.page.inner_text("#coords")
        m = re.fullmatch(r"x (\d+), y (\d+) px \(level 0\) · x ([\d.]+), y ([\d.]+) µm", text)
        assert m, text
        px, py, ux, uy = (float(g) for g in m.groups())
        screen_px = 2048 / box["width"] + 1  # level-0 pixels per screen pixel, and one for rounding
        assert abs(px - x) <= screen_px and abs(py - y) <= screen_px, text
        assert abs(ux - px * 0.5) <= 0.55 and abs(uy - py * 0.5) <= 0.55, text
    assert page.errors == []


def test_cohort_list_and_a_moved_slide(browser: object, moved: Path):
    (moved / "failures.csv").write_text(
        "slide,error,fix\n/data/broken.svs,cannot open the file,re-export it\n"
    )
    with serving(moved) as url:
        page = Page(browser, url)
        names = page.page.locator("#slides .name").all_inner_texts()
        areas = page.page.locator("#slides .area").all_inner_texts()
        assert names == ["square", "clear"]
        assert areas[0] == "tumour 0.049 mm² (9.4% of the tissue)" and areas[1] == "slide not found"
        assert areas[2].startswith("tumour 0.000 mm²")
        failed = page.page.locator("#failure-list li").all_inner_texts()
        assert failed == ["/data/broken.svs: cannot open the file (fix: re-export it)"]
        problem = page.page.inner_text("#problem")
        assert (
            page.page.is_visible("#problem") and "slide not found at" in problem and "--slide-dir" in problem
        )
        # without the slide, the map alone is the base layer, still over the square (and the outlines too)
        geo = page.geometry()
        page.layers(probability=True, outlines=False)
        prob = _bbox(_nearest(page.shot(), YELLOW, [BACKGROUND, (255, 255, 255)]), geo["hide"])
        assert np.abs(prob - _clip(geo["rect"], page.shot().shape)).max() <= 1.0

        page.page.click("#slides button >> nth=1")
        page.page.wait_for_function("() => document.getElementById('title').textContent === 'clear'")
        page.wait()
        assert not page.page.is_visible("#problem") and page.page.url.endswith("#clear")
        assert not _nearest(page.shot(), YELLOW, [GLASS, TISSUE, BACKGROUND]).any()  # no tumour, no colour
        assert page.errors == []
