"""Slides whose pyramid levels are inconsistent are refused with the file, what is wrong and the fix."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from teachseg.errors import DataError
from teachseg.wsi.readers import Level, check_levels, open_slide


def write_levels(path: Path, shapes: list[tuple[int, int]], mpp: float = 0.5) -> Path:
    """A tiled TIFF with one page per (height, width), the later ones marked reduced-resolution."""
    import tifffile

    with tifffile.TiffWriter(path) as tw:
        for i, (h, w) in enumerate(shapes):
            tw.write(
                np.full((h, w, 3), 200, np.uint8),
                tile=(128, 128),
                photometric="rgb",
                subfiletype=1 if i else 0,
                resolution=(1e4 / (mpp * (2**i)), 1e4 / (mpp * (2**i))),
                resolutionunit="CENTIMETER",
                metadata=None,
            )
    return path


@pytest.mark.parametrize(
    ("shapes", "what"),
    [
        ([(512, 512), (1024, 1024)], r"page 1 \(1024x1024 px\) is larger than the first page"),
        ([(1024, 1024), (512, 300)], r"level 1 is 300x512 px, but level 0 \(1024x1024 px\).* makes 378x378"),
        ([(512, 512), (512, 512)], r"level downsamples do not increase"),
    ],
    ids=["level-1-bigger", "mis-sized", "same-size"],
)
def test_inconsistent_tiff_pyramid_is_refused(tmp_path, shapes, what):
    path = write_levels(tmp_path / "odd.tif", shapes)
    with pytest.raises(DataError, match=what) as info:
        open_slide(path)
    message = str(info.value)
    assert message.startswith(f"{path}: inconsistent pyramid levels") and "\n" not in message
    assert info.value.fix and "re-export" in info.value.fix


def test_consistent_pyramids_still_open(tmp_path):
    # sizes rounded down (1000 -> 500 -> 250 -> 125) and a 1-pixel top level are fine
    path = write_levels(tmp_path / "fine.tif", [(1000, 1000), (500, 500), (250, 250), (1, 1)])
    with open_slide(path) as r:
        assert [(lv.width, lv.height) for lv in r.levels][:3] == [(1000, 1000), (500, 500), (250, 250)]


@pytest.mark.parametrize(
    ("levels", "what"),
    [
        ([Level(0, 100, 100, 1.0), Level(1, 0, 50, 2.0)], "level 1 has zero size"),
        ([Level(0, 100, 100, 1.0), Level(1, 200, 200, 0.5)], "level 1 .200x200 px. is larger than level 0"),
        ([Level(0, 100, 100, 1.0), Level(1, 50, 50, 2.0), Level(2, 50, 50, 2.0)], "do not increase"),
        ([Level(0, 100, 100, 1.0), Level(1, 50, 40, 2.0)], "level 1 is 50x40 px.*makes 50x50 px"),
        ([Level(0, 100, 100, 1.0), Level(1, 1, 1, float("nan"))], "no valid downsample"),
    ],
)
def test_check_levels_names_what_is_wrong(levels, what):
    with pytest.raises(DataError, match=what):
        check_levels(levels, Path("slide.svs"))


def test_check_levels_accepts_rounded_sizes():
    check_levels(
        [Level(0, 46000, 32893, 1.0), Level(1, 11500, 8223, 4.0002), Level(2, 2875, 2055, 16.0)], Path("s")
    )


def test_inconsistent_slide_in_a_cohort_is_a_failure_row(tmp_path, slide_path):
    from teachseg.inference.run import predict_paths
    from tests.inference.test_cohort import OPTS, _echo

    folder = tmp_path / "batch"
    folder.mkdir()
    shutil.copy(slide_path, folder / "good.tif")
    write_levels(folder / "odd.tif", [(512, 512), (1024, 1024)])
    out = tmp_path / "out"
    with pytest.raises(DataError, match=r"1 of 2 inputs could not be read \(odd.tif\)"):
        predict_paths(*_echo(), [folder], out, OPTS)
    with (out / "failures.csv").open(newline="", encoding="utf-8") as f:
        (row,) = list(csv.DictReader(f))
    assert Path(row["slide"]).name == "odd.tif"
    assert "inconsistent pyramid levels" in row["error"] and "larger than the first page" in row["error"]
    assert "re-export" in row["fix"]
    assert (out / "good_summary.json").is_file() and (out / "good_prob.tif").is_file()
    assert not list(out.glob("odd*"))
