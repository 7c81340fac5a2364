"""An experiment reuses a finished run only when the run was made with the same config (issue 13)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from teachseg.cli import run
from teachseg.config import Config, build_config
from teachseg.errors import ConfigError
from teachseg.selftrain.experiment import run_experiment
from tests.conftest import TINY, _merge


def _cfg(tmp_path: Path, root: Path, **extra: object) -> Config:
    raw = _merge(
        TINY,
        {
            "name": "exp",
            "output_dir": str(tmp_path / "runs"),
            "data": {"root": str(root)},
            "selftrain": {"max_generations": 1, "tta": False},
            "experiment": {"archs": ["linknet"], "seeds": [0]},
        },
    )
    return build_config(_merge(raw, dict(extra)))


def test_experiment_refuses_or_retrains_runs_with_another_config(
    tmp_path: Path, synth_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _cfg(tmp_path, synth_data)
    state = run_experiment(cfg)
    assert [r["status"] for r in state["runs"]] == ["done"]
    rdir = cfg.run_dir / "linknet_seed0"
    finished = (rdir / "summary.json").stat().st_mtime_ns

    # the same config up to cosmetic keys: the finished run is reused, not retrained
    run_experiment(_cfg(tmp_path, synth_data, data={"num_workers": 1, "cache_images": False}))
    assert (rdir / "summary.json").stat().st_mtime_ns == finished

    # a result-affecting change: refused before anything trains, naming the run and the key
    changed = _cfg(tmp_path, synth_data, train={"lr": 0.01})
    with pytest.raises(ConfigError) as err:
        run_experiment(changed)
    assert "linknet_seed0" in str(err.value) and "train.lr: 0.001 -> 0.01" in str(err.value)
    assert "--overwrite" in str(err.value)
    assert (rdir / "summary.json").stat().st_mtime_ns == finished
    assert yaml.safe_load((rdir / "config.yaml").read_text())["train"]["lr"] == 0.001

    # the CLI says the same in one line and exits 2
    cfg_file = tmp_path / "exp.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg.to_dict()))
    capsys.readouterr()
    assert run(["experiment", str(cfg_file), "--set", "train.lr=0.01"]) == 2
    err_text = capsys.readouterr().err
    assert "train.lr: 0.001 -> 0.01" in err_text and "Traceback" not in err_text

    # overwrite: the run is trained again with the new config
    run_experiment(changed, overwrite=True)
    assert (rdir / "summary.json").stat().st_mtime_ns != finished
    assert yaml.safe_load((rdir / "config.yaml").read_text())["train"]["lr"] == 0.01
