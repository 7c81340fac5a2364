"""`--resume` refuses a run folder made with another config, naming the changed keys (issue 13)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from teachseg.cli import run
from teachseg.config import build_config
from teachseg.io import read_json
from teachseg.training.identity import (
    RUN_IDENTITY,
    changed_keys,
    config_fields,
    config_hash,
    describe_changes,
)


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_identity_leaves_out_cosmetic_keys_and_hashes_canonically() -> None:
    base = build_config({"name": "a", "data": {"num_workers": 0}})
    cosmetic = build_config(
        {
            "name": "b",
            "output_dir": "elsewhere",
            "data": {"num_workers": 7, "cache_images": False},
            "train": {"progress_bar": False, "log_every_n_steps": 1},
            "experiment": {"seeds": [1, 2]},
            "selftrain": {"skip_bad": True},
        }
    )
    assert config_hash(base) == config_hash(cosmetic)
    assert "name" not in config_fields(base) and "data.num_workers" not in config_fields(base)
    assert "train.epochs" in config_fields(base) and "selftrain.tta" in config_fields(base)
    changed = build_config({"train": {"epochs": 3}, "selftrain": {"tta": False}})
    assert config_hash(changed) != config_hash(base)
    keys = changed_keys(config_fields(base), config_fields(changed))
    assert keys == [("selftrain.tta", True, False), ("train.epochs", 30, 3)]
    assert describe_changes(keys) == "selftrain.tta: true -> false, train.epochs: 30 -> 3"


def test_resume_with_a_changed_config_is_refused(
    tmp_path: Path,
    synth_data: Path,
    write_config: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = write_config(synth_data)
    run_dir = tmp_path / "runs" / "tiny"
    assert run(["train", str(cfg)]) == 0
    ident = read_json(run_dir / RUN_IDENTITY)
    assert ident["config_hash"] and ident["config"]["train.epochs"] == 1
    config_before = (run_dir / "config.yaml").read_text()
    summary_before = (run_dir / "summary.json").stat().st_mtime_ns

    # a result-affecting key changed: refused, naming the key with old -> new, and nothing is touched
    capsys.readouterr()
    assert run(["train", str(cfg), "--resume", "--set", "train.lr=0.01", "--set", "seed=5"]) == 2
    line = _error(capsys)
    assert "train.lr: 0.001 -> 0.01" in line and "seed: 0 -> 5" in line and "--overwrite" in line
    assert (run_dir / "config.yaml").read_text() == config_before
    assert (run_dir / "summary.json").stat().st_mtime_ns == summary_before

    # the same config (or only cosmetic changes) resumes: the finished run is returned as is
    assert run(["train", str(cfg), "--resume", "--set", "data.num_workers=1"]) == 0
    assert (run_dir / "summary.json").stat().st_mtime_ns == summary_before

    # --overwrite starts again with the new config
    assert run(["train", str(cfg), "--overwrite", "--set", "train.lr=0.01"]) == 0
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["train"]["lr"] == 0.01
    assert read_json(run_dir / RUN_IDENTITY)["config"]["train.lr"] == 0.01


def test_resume_of_a_folder_without_identity_file_compares_its_config_yaml(
    tmp_path: Path,
    synth_data: Path,
    write_config: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Run folders written before run_identity.json existed are checked against their config.yaml."""
    cfg = write_config(synth_data)
    run_dir = tmp_path / "runs" / "tiny"
    run_dir.mkdir(parents=True)
    old = build_config(yaml.safe_load(cfg.read_text()), overrides=["train.epochs=4"])
    (run_dir / "config.yaml").write_text(old.to_yaml())
    capsys.readouterr()
    assert run(["selftrain", str(cfg), "--resume"]) == 2
    assert "train.epochs: 4 -> 1" in _error(capsys)


def test_a_key_added_by_a_newer_version_at_its_default_is_not_drift(tmp_path: Path) -> None:
    """An identity written before a config key existed matches while the key keeps its default."""
    from teachseg.io import write_json
    from teachseg.training.identity import config_drift

    cfg = build_config({"data": {"root": str(tmp_path)}}, "x")
    fields = config_fields(cfg)
    older = {k: v for k, v in fields.items() if k != "data.duplicates"}  # as written before the key existed
    run_dir = tmp_path / "run"
    write_json(run_dir / RUN_IDENTITY, {"hash": "old", "config": older})
    assert config_drift(run_dir, cfg) == []
    changed = build_config({"data": {"root": str(tmp_path), "duplicates": "off"}}, "x")
    assert config_drift(run_dir, changed) == [("data.duplicates", "group", "off")]
