"""Fixtures of the pretraining tests: a prepared split of the synthetic data, and a config to pretrain with."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

from teachseg.config import Config
from tests.conftest import TINY, _merge

#: pretraining settings that finish in seconds on the synthetic 64 px tiles
QUICK = {"objective": "densecl", "epochs": 1, "batch_size": 4}


def make_config(root: Path, out: Path, **extra: Any) -> Config:
    """The tiny config on ``root`` writing under ``out``, with :data:`QUICK` pretraining, merged with ``extra``."""
    base = _merge(TINY, {"output_dir": str(out), "data": {"root": str(root)}, "pretrain": QUICK})
    return Config.model_validate(_merge(base, extra))


def prepared(cfg: Config) -> Any:
    """The run's split and records (its split.json written to a scratch folder)."""
    from teachseg.training.prepare import prepare_data

    with tempfile.TemporaryDirectory() as scratch:
        return prepare_data(cfg, Path(scratch), need_labels=False)


@pytest.fixture
def quick_config(synth_data: Path, tmp_path: Path) -> Config:
    return make_config(synth_data, tmp_path / "runs")
