"""The pixel limit checked before decoding: default, environment override, refusal naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from teachseg.data.limits import MAX_IMAGE_PIXELS, MAX_PIXELS_ENV, check_pixels, max_image_pixels
from teachseg.errors import DataError


def test_default_and_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)
    assert max_image_pixels() == MAX_IMAGE_PIXELS
    monkeypatch.setenv(MAX_PIXELS_ENV, "1_000")
    assert max_image_pixels() == 1000
    monkeypatch.setenv(MAX_PIXELS_ENV, "-5")
    with pytest.raises(DataError, match=MAX_PIXELS_ENV):
        max_image_pixels()


def test_check_pixels_names_the_file_and_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MAX_PIXELS_ENV, "100")
    check_pixels(Path("ok.png"), 10, 10)
    with pytest.raises(DataError, match=r"big\.png.*10x11.*100 pixels"):
        check_pixels(Path("big.png"), 10, 11)
