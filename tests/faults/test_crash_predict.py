"""``predict`` (two generated pyramidal slides) killed anywhere and resumed gives the uninterrupted outputs."""

from __future__ import annotations

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
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    import torch

    from teachseg.data.synth_slide import synthetic_slide
    from teachseg.models import ModelMeta, build_model, save_model_folder

    base = tmp_path_factory.mktemp("predict-inputs")
    torch.manual_seed(0)
    model = base / "model"
    save_model_folder(
        build_model("linknet", "resnet18"), model, ModelMeta("linknet", "resnet18", 64, mpp=0.5)
    )
    slides = [base / "a.tif", base / "b.tif"]
    synthetic_slide(slides[0], 384, tissue_fraction=0.5, mpp=0.5, seed=3, tile=128)
    synthetic_slide(slides[1], 320, tissue_fraction=0.5, mpp=0.5, seed=4, tile=128)
    return model, slides


def test_predict_survives_sigkill_anywhere(
    inputs, tmp_path: Path, logs: Path, kills: int, fault_summary
) -> None:
    model, slides = inputs
    out = tmp_path / "out"
    ref = tmp_path / "ref"
    argv = teachseg_argv("predict", str(model), *map(str, slides), "--out", str(out), "--no-progress")
    job = CrashJob(
        name="predict",
        first=argv,
        again=[*argv, "--resume"],
        out=out,
        reset=lambda: shutil.rmtree(out, ignore_errors=True),
        compare=lambda: compare_folders(out, ref),
        cwd=tmp_path,
    )
    events = baseline(job, logs, ref)
    report = crash_matrix(job, kills, events, seed=11, logs=logs)
    assert_survived(report, fault_summary)
