"""The benchmark ledger (``benchmarks/_ledger.py``): finished runs kept without weights, restored on another
path to the same data and reused without training, refused for other data, never half-written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from benchmarks._ledger import PROVENANCE, provenance_of, record, restore
from PIL import Image

import teachseg.selftrain.experiment as experiment
from teachseg.config import Config, build_config
from teachseg.selftrain.experiment import run_experiment
from tests.conftest import TINY, _merge


def _cfg(out: Path, root: Path) -> Config:
    raw = _merge(
        TINY,
        {
            "name": "exp",
            "output_dir": str(out),
            "data": {"root": str(root)},
            "selftrain": {"max_generations": 1, "tta": False},
            "experiment": {"archs": ["linknet"], "seeds": [0]},
        },
    )
    return build_config(raw)


def _files(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory, synth_data: Path) -> tuple[Path, Path]:
    """A finished tiny self-training experiment (Teacher and one Student) on a copy of the synthetic data."""
    base = tmp_path_factory.mktemp("ledger")
    root = base / "data-a"
    shutil.copytree(synth_data, root)
    cfg = _cfg(base / "out-a", root)
    state = run_experiment(cfg)
    assert [r["status"] for r in state["runs"]] == ["done"]
    return cfg.run_dir, root


@pytest.fixture
def ledger(finished_run: tuple[Path, Path], tmp_path: Path) -> Path:
    """The finished run recorded in a fresh ledger grid folder."""
    path = tmp_path / "ledger" / "exp"
    record(finished_run[0], path, lambda _: None)
    return path


def test_record_keeps_the_figures_and_no_weights(finished_run: tuple[Path, Path], tmp_path: Path) -> None:
    exp_dir, _ = finished_run
    ledger = tmp_path / "ledger" / "exp"
    said: list[str] = []
    assert record(exp_dir, ledger, said.append) == 1
    assert said == ["  ledger: recorded exp/linknet_seed0"]
    run = ledger / "linknet_seed0"
    kept = set(_files(run))
    for name in ("config.yaml", "run_identity.json", "split.json", "summary.json", "lineage.json"):
        assert name in kept
    for gen in ("gen0", "gen1"):
        for name in ("summary.json", "metrics.csv", "val_per_image.csv", "model/teachseg.json"):
            assert f"{gen}/{name}" in kept
    # the kept files are the run's own, byte for byte
    src = _files(exp_dir / "linknet_seed0")
    assert all(src[k] == v for k, v in _files(run).items() if k != PROVENANCE)
    # nothing heavy: no weights, checkpoints, predictions or pseudo-labels
    assert not [k for k in kept if k.endswith((".safetensors", ".ckpt", ".png", ".pt"))]
    assert sum(len(v) for v in _files(run).values()) < 0.01 * sum(len(v) for v in src.values())
    prov = json.loads((run / PROVENANCE).read_text())
    assert {"git_commit", "cpu", "gpu", "torch", "torch_threads", "recorded"} <= set(prov)
    assert not [p for p in ledger.iterdir() if p.name.startswith(".")]  # no temporary folder left
    # recording again changes nothing
    before = (run / PROVENANCE).stat().st_mtime_ns
    assert record(exp_dir, ledger, said.append) == 0
    assert (run / PROVENANCE).stat().st_mtime_ns == before


def test_restore_on_another_path_is_reused_without_training(
    finished_run: tuple[Path, Path], ledger: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp_dir, root = finished_run
    moved = tmp_path / "elsewhere" / "data"
    shutil.copytree(root, moved)
    cfg = _cfg(tmp_path / "out-b", moved)
    assert restore(ledger, cfg.run_dir, moved, lambda _: None) == 1

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("a restored run was trained again")

    monkeypatch.setattr(experiment, "run_method", no_training)
    # no overwrite: a config drift would raise instead of retraining
    state = run_experiment(cfg)
    assert [r["status"] for r in state["runs"]] == ["done"]
    restored = cfg.run_dir / "linknet_seed0"
    original = exp_dir / "linknet_seed0"
    for name in ("lineage.json", "gen0/val_per_image.csv", "gen1/summary.json"):
        assert (restored / name).read_bytes() == (original / name).read_bytes()
    assert str(moved) in (restored / "config.yaml").read_text()
    assert str(root) not in (restored / "run_identity.json").read_text()
    # the report's reader sees where the runs came from, and record leaves the ledger copy alone
    groups = provenance_of(cfg.run_dir)
    assert list(groups.values()) == [["linknet_seed0"]]
    assert record(cfg.run_dir, ledger, lambda _: None) == 0
    # a finished run already in --out is kept as it is
    assert restore(ledger, cfg.run_dir, moved, lambda _: None) == 0


def test_restore_refuses_runs_trained_on_other_images(
    finished_run: tuple[Path, Path], ledger: Path, tmp_path: Path
) -> None:
    root = finished_run[1]
    other = tmp_path / "other"
    shutil.copytree(root, other)
    for path in sorted((other / "images").glob("*.png")):
        arr = np.asarray(Image.open(path))
        Image.fromarray(np.ascontiguousarray(arr[::-1])).save(path)
    said: list[str] = []
    out = tmp_path / "out-c" / "exp"
    assert restore(ledger, out, other, said.append) == 0
    assert not (out / "linknet_seed0").exists()
    assert "trained on images not found" in said[0] and "not reused" in said[0]


def test_an_incomplete_ledger_run_is_skipped_and_replaces_nothing(
    finished_run: tuple[Path, Path], ledger: Path, tmp_path: Path
) -> None:
    root = finished_run[1]
    (ledger / "linknet_seed0" / "lineage.json").unlink()
    out = tmp_path / "out-d" / "exp"
    (out / "linknet_seed0").mkdir(parents=True)
    (out / "linknet_seed0" / "partial.txt").write_text("an interrupted run")
    said: list[str] = []
    assert restore(ledger, out, root, said.append) == 0
    assert said == ["  ledger: linknet_seed0 is incomplete, skipped"]
    assert (out / "linknet_seed0" / "partial.txt").is_file()


def test_record_replaces_an_older_copy_of_a_run(finished_run: tuple[Path, Path], tmp_path: Path) -> None:
    exp_dir, _ = finished_run
    ledger = tmp_path / "ledger" / "exp"
    stale = ledger / "linknet_seed0"
    stale.mkdir(parents=True)
    (stale / "lineage.json").write_text("{}")
    (stale / "stale.csv").write_text("old")
    assert record(exp_dir, ledger, lambda _: None) == 1
    assert not (stale / "stale.csv").exists()
    assert (stale / "lineage.json").read_bytes() == (exp_dir / "linknet_seed0" / "lineage.json").read_bytes()
    assert sorted(p.name for p in ledger.iterdir()) == ["linknet_seed0"]


def test_the_record_command_refuses_a_wrong_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks._ledger import main

    assert main([str(tmp_path / "nope"), str(tmp_path / "ledger")]) == 2
    assert "nope is not a folder" in capsys.readouterr().err
    assert not (tmp_path / "ledger").exists()
