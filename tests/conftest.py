"""Shared fixtures: a tiny synthetic dataset, a config writer, a trained tiny run, the real data locator."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

#: The folder ``shared`` beside the repository root (real data for the real-data tests and benchmarks).
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REPO = Path(__file__).resolve().parents[1]

# Keep every test on the CPU's two cores and off the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("CI", "1")
# Image-hash and OpenVINO caches of the tests go to a throw-away folder, not the user's ~/.cache/teachseg,
# removed when the test process ends (subprocesses inherit it and finish first).
if "TEACHSEG_CACHE_DIR" not in os.environ:
    os.environ["TEACHSEG_CACHE_DIR"] = tempfile.mkdtemp(prefix="teachseg-test-cache-")
    atexit.register(shutil.rmtree, os.environ["TEACHSEG_CACHE_DIR"], ignore_errors=True)

#: The smallest config that trains: 64x64, linknet + resnet18, batch 4, no workers, fp32 for speed; a fixed
#: number of epochs (``train.stop: epochs``), so that a test states how long it trains (the tests of
#: ``train.stop: converge`` set it themselves).
TINY: dict[str, Any] = {
    "name": "tiny",
    "seed": 0,
    "data": {"image_size": 64, "val_fraction": 0.25, "batch_size": 4, "num_workers": 0},
    "model": {"arch": "linknet", "encoder": "resnet18"},
    "train": {
        "stop": "epochs",
        "epochs": 1,
        "progress_bar": False,
        "precision": "32-true",
        "accelerator": "cpu",
    },
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fuzz-all", action="store_true", default=False, help="tests/fuzz: many more mutations per file"
    )
    parser.addoption(
        "--faults-all",
        action="store_true",
        default=False,
        help="tests/faults: kill every command at 30 points instead of 10",
    )


def teachseg_cmd() -> list[str]:
    """The command that starts the CLI in a subprocess: the console script beside this Python."""
    exe = Path(sys.executable).parent / "teachseg"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "teachseg"]


def run_ddp_cpu(
    command: str, cfg: Path, port: int, *sets: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """``teachseg COMMAND CFG`` under two-process DDP on the CPU (gloo) through the console script, with the
    ``--set`` overrides ``sets``; ``env`` adds environment variables (a rank variable left over from an outer
    DDP job is removed)."""
    base = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "RANK")}
    base.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1", **(env or {}))
    ddp = ["train.accelerator=cpu", "train.devices=2", "train.strategy=ddp", *sets]
    return subprocess.run(
        [*teachseg_cmd(), command, str(cfg), *[a for s in ddp for a in ("--set", s)]],
        capture_output=True,
        text=True,
        env=base,
        timeout=timeout,
    )


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = (
            _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The real data folder; tests that need it skip when it is absent."""
    if not (SHARED / "data").is_dir():
        pytest.skip(f"real data not found under {SHARED / 'data'}")
    return SHARED


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 labelled + 4 unlabelled 64x64 synthetic tiles (images/, masks/, unlabelled/). Do not modify."""
    from teachseg.data.synth import generate

    return generate(tmp_path_factory.mktemp("synth") / "data", n_labelled=16, n_unlabelled=4, size=64, seed=0)


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """``write_config(data_root, **sections)`` -> a YAML file of the tiny config (merged with ``sections``)."""

    def _write(root: Path | None = None, name: str = "config.yaml", **extra: Any) -> Path:
        cfg = _merge(TINY, {"output_dir": str(tmp_path / "runs"), **extra})
        if root is not None:
            cfg = _merge(cfg, {"data": {"root": str(root)}})
        path = tmp_path / name
        path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
        return path

    return _write


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, synth_data: Path) -> Path:
    """One finished 2-epoch `teachseg train` run folder on the synthetic data (shared, read-only)."""
    from teachseg.cli import run

    base = tmp_path_factory.mktemp("tiny_run")
    cfg = _merge(
        TINY, {"output_dir": str(base / "runs"), "data": {"root": str(synth_data)}, "train": {"epochs": 2}}
    )
    path = base / "config.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    code = run(["train", str(path)])
    assert code == 0, "the shared tiny training run failed"
    return base / "runs" / "tiny"
