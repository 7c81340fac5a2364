"""Fixtures for the viewer tests: slides with a known tumour square, predicted by a stand-in model.

The "model" calls tumour exactly the slide's purple pixels, so the probability map is 1 on the square and 0
elsewhere; it predicts at 1 um/px on a 0.5 um/px slide, so the map is half the slide's size and the viewer
has to scale it (a map drawn at the wrong scale or offset misses the square).
"""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

SIZE = (2048, 1536)  # level-0 width, height
MPP = 0.5
SQUARE = (640, 512, 1152, 896)  # tumour: x0, y0, x1, y1 in level-0 pixels
GLASS = (242, 241, 239)
TISSUE = (226, 150, 196)
TUMOUR = (105, 45, 140)


def square_slide(path: Path, tumour: bool = True) -> Path:
    """A 4-level pyramidal TIFF: glass, a band of tissue and (``tumour``) the purple square."""
    from teachseg.data.synth_slide import write_pyramid_rgb

    w, h = SIZE
    img = np.full((h, w, 3), GLASS, np.uint8)
    img[200:1400, 150:1900] = TISSUE
    if tumour:
        x0, y0, x1, y1 = SQUARE
        img[y0:y1, x0:x1] = TUMOUR
    return write_pyramid_rgb(path, img, mpp=MPP, tile=256, min_side=256, compression="zlib")


def purple(images: np.ndarray) -> np.ndarray:
    """The stand-in model: probability 1 on purple pixels, 0 elsewhere."""
    rgb = images.astype(np.int16)
    return ((rgb[..., 0] < 160) & (rgb[..., 2] > 100)).astype(np.float32)


def predict_folder(slides: list[Path], out: Path) -> Path:
    """``teachseg predict``'s outputs for ``slides`` in ``out`` (the run's own code, the stand-in model)."""
    from teachseg.inference.options import ModelInfo, PredictOptions
    from teachseg.inference.run import predict_paths

    info = ModelInfo("purple", "stand-in", "none", image_size=128, mpp=1.0, threshold=0.5)
    predict_paths(purple, info, slides, out, PredictOptions(batch_size=16))
    return out


@pytest.fixture(scope="session")
def predictions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A predicted cohort of two slides: ``square`` (the tumour square) and ``clear`` (tissue, no tumour)."""
    root = tmp_path_factory.mktemp("viewer")
    slides = [square_slide(root / "square.tif"), square_slide(root / "clear.tif", tumour=False)]
    return predict_folder(slides, root / "out")


@pytest.fixture
def folder_copy(predictions: Path, tmp_path: Path) -> Path:
    """A copy of the predicted folder that a test may change (its slides stay where they were)."""
    return Path(shutil.copytree(predictions, tmp_path / "out"))


def set_summary(folder: Path, name: str, key: str, value: object) -> None:
    """Change one key of ``NAME_summary.json`` (``outputs.geojson`` for a key of ``outputs``)."""
    import json

    path = folder / f"{name}_summary.json"
    data = json.loads(path.read_text())
    if key.startswith("outputs."):
        data["outputs"][key.split(".", 1)[1]] = value
    else:
        data[key] = value
    path.write_text(json.dumps(data))


@pytest.fixture
def moved(predictions: Path, folder_copy: Path, tmp_path: Path) -> Path:
    """A copy of the folder whose ``square`` slide was predicted at ``tmp_path/slides/square.tif`` and has since
    moved to ``tmp_path/archive``."""
    (tmp_path / "archive").mkdir()
    shutil.copy(predictions.parent / "square.tif", tmp_path / "archive" / "square.tif")
    set_summary(folder_copy, "square", "input", str(tmp_path / "slides" / "square.tif"))
    return folder_copy


@pytest.fixture
def served(predictions: Path) -> Iterator[str]:
    """The viewer over ``predictions``, serving on 127.0.0.1 from a thread; yields its URL."""
    with serving(predictions) as url:
        yield url


@contextlib.contextmanager
def serving(folder: Path, log: list[str] | None = None) -> Iterator[str]:
    """Serve the viewer over ``folder`` from a thread while the block runs; gives its URL."""
    from teachseg.viewer.catalog import load_catalog
    from teachseg.viewer.server import Viewer, serve

    server = serve(Viewer(load_catalog(folder), log=(log.append if log is not None else lambda s: None)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
