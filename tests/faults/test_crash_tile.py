"""``tile`` (a generated slide + GeoJSON annotations) killed anywhere and run again gives the same tiles."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.faults.harness import (
    CrashJob,
    assert_survived,
    baseline,
    compare_folders,
    crash_matrix,
    teachseg_argv,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def annotated_slide(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from teachseg.data.synth_slide import synthetic_slide

    base = tmp_path_factory.mktemp("tile-inputs")
    slide = base / "slide.tif"
    synthetic_slide(slide, 512, tissue_fraction=0.6, mpp=0.5, seed=7, tile=128)
    ring = [[96, 96], [300, 80], [330, 260], [140, 300], [96, 96]]
    hole = [[160, 150], [220, 150], [220, 200], [160, 150]]
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [ring, hole]},
            "properties": {"classification": {"name": "Tumor"}},
        }
    ]
    annotations = base / "slide.geojson"
    annotations.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return slide, annotations


def test_tile_survives_sigkill_anywhere(
    annotated_slide, tmp_path: Path, logs: Path, kills: int, fault_summary
) -> None:
    slide, annotations = annotated_slide
    out = tmp_path / "tiles"
    ref = tmp_path / "ref"
    argv = teachseg_argv(
        "tile", str(slide), "--out", str(out), "--annotations", str(annotations), "--size", "32",
        "--min-tissue", "0.2",
    )  # fmt: skip
    job = CrashJob(
        name="tile",
        first=argv,
        again=argv,  # idempotent: running it again is how a killed tile job resumes
        out=out,
        reset=lambda: shutil.rmtree(out, ignore_errors=True),
        compare=lambda: compare_folders(out, ref),
        cwd=tmp_path,
    )
    events = baseline(job, logs, ref)
    assert len(list((ref / "masks").glob("*.png"))) > 5 and len(list((ref / "unlabelled").glob("*.png"))) > 5
    report = crash_matrix(job, kills, events, seed=12, logs=logs)
    assert_survived(report, fault_summary)
