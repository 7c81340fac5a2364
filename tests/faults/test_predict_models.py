"""A cohort killed, failed, resumed and re-run with another model never ends with mixed outputs (issue 31).

Real ``teachseg predict`` processes on two generated slides and two model folders (same architecture, other
weights). Each chain: model 1 killed at a seeded point; resumed while slide b fails after its TIFF and
overlay were renamed into place (a folder sits where its GeoJSON goes); resumed with model 2 (refused,
naming the weights); replaced with ``--overwrite`` and killed; resumed to the end. After every step each
summary's set must be, file for file, what an uninterrupted run of the model it names wrote, and
``cohort.csv`` must name one model; the chain ends with model 2's uninterrupted outputs.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.faults.harness import (
    MAX_DELAY,
    compare_folders,
    hidden_leftovers,
    partial_files,
    run_job,
    teachseg_argv,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[Path]]:
    import torch

    from teachseg.data.synth_slide import synthetic_slide
    from teachseg.models import ModelMeta, build_model, save_model_folder

    base = tmp_path_factory.mktemp("models-cohort")
    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        folder = base / f"model{seed + 1}"
        save_model_folder(
            build_model("linknet", "resnet18"), folder, ModelMeta("linknet", "resnet18", 64, mpp=0.5)
        )
        models.append(folder)
    slides = [base / "a.tif", base / "b.tif"]
    synthetic_slide(slides[0], 384, tissue_fraction=0.5, mpp=0.5, seed=3, tile=128)
    synthetic_slide(slides[1], 320, tissue_fraction=0.5, mpp=0.5, seed=4, tile=128)
    return models, slides


def _argv(model: Path, slides: list[Path], out: Path, *extra: str) -> list[str]:
    return teachseg_argv(
        "predict", str(model), *map(str, slides), "--out", str(out), "--no-progress",
        "--backend", "torch", "--precision", "fp32", *extra,
    )  # fmt: skip


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def assert_no_mixed_sets(out: Path, refs: dict[str, Path], scratch: Path) -> None:
    """Every summary in ``out`` lists the outputs that the model it names wrote uninterrupted (``refs``:
    weights hash -> that run's folder), and ``cohort.csv`` names one model, the one of each row's summary."""
    for path in sorted(out.glob("*_summary.json")):
        summary = json.loads(path.read_text())
        ref = refs[summary["model"]["weights_sha256"]]
        shutil.rmtree(scratch, ignore_errors=True)
        for side, folder in (("got", out), ("want", ref)):
            (scratch / side).mkdir(parents=True)
            for file in [path.name, *summary["outputs"].values()]:
                (scratch / side / file).symlink_to(folder / file)
        compare_folders(scratch / "got", scratch / "want")
    if (out / "cohort.csv").exists():
        rows = _rows(out / "cohort.csv")
        assert len({r["weights_sha256"] for r in rows}) <= 1, rows
        for row in rows:
            summary = json.loads((out / f"{row['name']}_summary.json").read_text())
            assert row["identity"] == summary["identity"], row


def test_killed_failed_resumed_and_rerun_with_another_model(cohort, tmp_path: Path, logs: Path) -> None:
    from teachseg.training.identity import file_sha256

    (m1, m2), slides = cohort
    refs = {}
    events = 0  # progress events of the uninterrupted run of model 1: the range of kill points
    for model in (m1, m2):
        ref = tmp_path / f"ref-{model.name}"
        done = run_job(_argv(model, slides, ref), [ref], logs / f"{model.name}.log", cwd=tmp_path)
        assert done.returncode == 0, done.log[-3000:]
        refs[file_sha256(model / "model.safetensors")] = ref
        events = events or done.events
    ref2 = refs[file_sha256(m2 / "model.safetensors")]

    rng = np.random.default_rng(31)
    for chain in range(2):
        out = tmp_path / f"out{chain}"
        step = 0

        def job(argv: list[str], kill: bool = False, out: Path = out, chain: int = chain) -> int:
            nonlocal step
            step += 1
            after = int(rng.integers(1, events + 1)) if kill else None
            delay = float(rng.uniform(0, MAX_DELAY)) if kill else 0.0
            res = run_job(
                argv, [out], logs / f"c{chain}-{step}.log", cwd=tmp_path, kill_after=after, delay=delay
            )
            assert not partial_files(out), partial_files(out)
            assert_no_mixed_sets(out, refs, tmp_path / "scratch")
            return 137 if res.killed else res.returncode

        job(_argv(m1, slides, out), kill=True)
        # b fails after its TIFF and overlay are in place: a folder sits where its GeoJSON goes
        blocker = out / "b.geojson"
        shutil.rmtree(blocker, ignore_errors=True)
        blocker.unlink(missing_ok=True)
        blocker.mkdir(parents=True)
        (blocker / "keep").write_text("x")
        assert job(_argv(m1, slides, out, "--resume")) == 2
        assert sorted(p.name for p in out.glob("b[._]*")) == ["b.geojson"], "the failed slide left outputs"
        assert [Path(r["slide"]).name for r in _rows(out / "failures.csv")] == ["b.tif"]
        shutil.rmtree(blocker)

        # the other model cannot resume this folder
        before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
        assert job(_argv(m2, slides, out, "--resume")) == 2
        assert "model.weights_sha256" in (logs / f"c{chain}-{step}.log").read_text()
        assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before

        # replaced by the other model, killed, resumed to the end
        job(_argv(m2, slides, out, "--overwrite"), kill=True)
        code = job(_argv(m2, slides, out, "--resume"))
        if code == 2:  # killed before it recorded its model: the folder is still model 1's, as the error says
            assert "model.weights_sha256" in (logs / f"c{chain}-{step}.log").read_text()
            code = job(_argv(m2, slides, out, "--overwrite"))
        assert code == 0
        assert not hidden_leftovers(out)
        compare_folders(out, ref2)  # failures.csv gone too: b succeeded
