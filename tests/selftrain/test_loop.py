"""The self-training loop end to end on tiny synthetic tiles: lineage, isolation of validation, bad input, resume."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from teachseg.cli import run
from teachseg.io import read_json

ST = {"selftrain": {"max_generations": 2, "tta": False}, "data": {"test_fraction": 0.2}}


@pytest.fixture(scope="module")
def st_run(tmp_path_factory: pytest.TempPathFactory, synth_data: Path) -> Path:
    import yaml

    from tests.conftest import TINY, _merge

    base = tmp_path_factory.mktemp("st")
    cfg = _merge(
        _merge(TINY, ST), {"output_dir": str(base / "runs"), "name": "st", "data": {"root": str(synth_data)}}
    )
    path = base / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert run(["selftrain", str(path)]) == 0
    return base / "runs" / "st"


def test_lineage_and_summary(st_run: Path) -> None:
    lineage = read_json(st_run / "lineage.json")
    gens = lineage["generations"]
    assert gens[0]["role"] == "teacher" and gens[0]["decision"] == "initial teacher"
    assert len(gens) >= 2
    for g in gens[1:]:
        assert g["role"] == "student"
        assert g["decision"].startswith(("accepted", "rejected"))
        for key in ("arch", "seed", "train_loss", "val_dice", "val_jaccard", "best_epoch", "wall_seconds"):
            assert g[key] is not None, key
        for key in ("mean_confidence", "confident_share", "positive_share", "n_images"):
            assert key in g["pseudo"]
    summary = read_json(st_run / "summary.json")
    assert (st_run / summary["final_model"] / "model.safetensors").is_file()
    assert summary["final_generation"] == lineage["final_generation"]
    # the replacement rule: the final generation is the last accepted student (or the teacher)
    accepted = [g["generation"] for g in gens[1:] if g["accepted"]]
    assert summary["final_generation"] == (accepted[-1] if accepted else 0)
    # stopping: either a rejection (patience 1) or max_generations
    assert len(gens) - 1 == 2 or not gens[-1]["accepted"]


def test_validation_and_test_never_get_pseudo_labels(st_run: Path) -> None:
    split = read_json(st_run / "split.json")
    manifest = read_json(st_run / "pseudo" / "gen1" / "manifest.json")
    labelled_eval = set(split["val"]) | set(split["test"])
    ids = {i["id"] for i in manifest["images"]}
    assert ids == set(split["unlabelled"])
    assert not ids & labelled_eval
    assert not set(split["unlabelled"]) & labelled_eval
    gen1 = read_json(st_run / "gen1" / "summary.json")
    assert gen1["n_pseudo"] == len(ids) and gen1["n_val"] == len(split["val"])


def test_no_unlabelled_images_stops_after_teacher(
    tmp_path: Path, write_config: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from teachseg.data.synth import generate

    data = generate(tmp_path / "d", n_labelled=8, n_unlabelled=1, size=64, seed=1)
    shutil.rmtree(data / "unlabelled")
    cfg = write_config(data)
    assert run(["selftrain", str(cfg)]) == 0
    err = capsys.readouterr()
    assert "no unlabelled images" in (err.out + err.err)
    lineage = read_json(tmp_path / "runs" / "tiny" / "lineage.json")
    assert len(lineage["generations"]) == 1
    assert "no unlabelled" in lineage["stopped_because"]


def test_unreadable_unlabelled_images_fail_early_or_are_skipped(
    tmp_path: Path, write_config: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from teachseg.data.synth import generate

    data = generate(tmp_path / "d", n_labelled=8, n_unlabelled=3, size=64, seed=2)
    bad = sorted((data / "unlabelled").glob("*.png"))[0]
    bad.write_bytes(bad.read_bytes()[:100])  # truncated
    cfg = write_config(data)
    assert run(["selftrain", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert bad.name in err and "--skip-bad" in err
    assert not (tmp_path / "runs" / "tiny" / "gen0").exists()  # failed before training started
    assert (
        run(["selftrain", str(cfg), "--overwrite", "--skip-bad", "--set", "selftrain.max_generations=1"]) == 0
    )
    lineage = read_json(tmp_path / "runs" / "tiny" / "lineage.json")
    assert [Path(b["path"]).name for b in lineage["skipped_bad"]] == [bad.name]


def test_teacher_folder_checks(
    tmp_path: Path, synth_data: Path, write_config: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from teachseg.models import ModelMeta, build_model, save_model_folder

    folder = tmp_path / "teacher"
    save_model_folder(
        build_model("linknet", "resnet18"), folder, ModelMeta("linknet", "resnet18", image_size=128)
    )
    cfg = write_config(synth_data, selftrain={"teacher_model": str(folder)})
    assert run(["selftrain", str(cfg)]) == 2
    assert "input size 128" in capsys.readouterr().err
    (folder / "model.safetensors").unlink()
    assert run(["selftrain", str(cfg), "--overwrite"]) == 2
    assert "model.safetensors" in capsys.readouterr().err


@pytest.mark.slow
def test_sigkill_mid_student_then_resume(
    tmp_path: Path, synth_data: Path, write_config: Callable[..., Path]
) -> None:
    cfg = write_config(
        synth_data,
        train={"epochs": 1},
        selftrain={"max_generations": 1, "tta": False, "student": {"epochs": 6}},
    )
    run_dir = tmp_path / "runs" / "tiny"
    cmd = [sys.executable, "-m", "teachseg", "selftrain", str(cfg)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    last = run_dir / "gen1" / "checkpoints" / "last.ckpt"
    while not last.is_file():
        assert proc.poll() is None, "selftrain ended before the student wrote a checkpoint"
        assert time.time() < deadline
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "gen1" / "summary.json").exists(), "killed too late: the student had finished"
    gen0_summary = (run_dir / "gen0" / "summary.json").stat().st_mtime_ns
    labels = {p: p.stat().st_mtime_ns for p in (run_dir / "pseudo" / "gen1").glob("*.png")}
    assert labels

    done = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (run_dir / "gen0" / "summary.json").stat().st_mtime_ns == gen0_summary  # teacher not retrained
    assert {p: p.stat().st_mtime_ns for p in labels} == labels  # pseudo-labels not rewritten
    lineage = read_json(run_dir / "lineage.json")
    assert [g["generation"] for g in lineage["generations"]] == [0, 1]
    metrics = (run_dir / "gen1" / "metrics.csv").read_text().strip().splitlines()
    assert len(metrics) == 1 + 6  # header + every student epoch exactly once


def test_unlabelled_copies_of_held_out_images_are_left_out_and_counted(
    tmp_path: Path, synth_data: Path
) -> None:
    """Issue 8: an unlabelled image with a validation or test image's pixels is never pseudo-labelled, and
    lineage.json counts what was left out."""
    import yaml

    from tests.conftest import TINY, _merge

    extra = tmp_path / "copies"
    extra.mkdir()
    for image in sorted((synth_data / "images").glob("*.png")):
        shutil.copy(image, extra / f"copy_{image.name}")
    cfg = _merge(
        _merge(TINY, {"selftrain": {"max_generations": 1, "tta": False}, "data": {"test_fraction": 0.2}}),
        {
            "output_dir": str(tmp_path / "runs"),
            "name": "copies",
            "data": {"root": str(synth_data), "unlabelled_dirs": [str(extra)]},
        },
    )
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert run(["selftrain", str(path)]) == 0
    run_dir = tmp_path / "runs" / "copies"
    split = read_json(run_dir / "split.json")
    held_out = set(split["val"]) | set(split["test"])
    excluded = set(split["unlabelled_excluded"])
    copies = {f"copy_{Path(i).name}" for i in held_out}
    assert {Path(i).name for i in excluded} == copies
    assert split["unlabelled_excluded_count"] == len(held_out)
    assert read_json(run_dir / "lineage.json")["unlabelled_excluded"] == len(held_out)
    manifest = read_json(run_dir / "pseudo" / "gen1" / "manifest.json")
    assert not {Path(i["id"]).name for i in manifest["images"]} & copies


def test_a_finished_loop_resumed_gives_back_every_planned_epoch(st_run: Path) -> None:
    """Resumed, a finished loop trains nothing: the epochs it gives back (reused fits, generations the no-gain
    rule or the cap made unneeded) add up to its plan, so the whole command's estimate ends at its total."""
    from teachseg.config import load_config
    from teachseg.selftrain.loop import run_selftrain
    from teachseg.selftrain.methods import planned_epochs
    from tests.training.test_progress import Recorder

    cfg = load_config(st_run / "config.yaml")
    rec = Recorder()
    run_selftrain(cfg, st_run, resume=True, console=rec)
    planned, bound = planned_epochs(cfg)
    assert bound and sum(e[1] for e in rec.events if e[0] == "skip") == planned, rec.events
    assert not [e for e in rec.events if e[0] == "epoch"]
