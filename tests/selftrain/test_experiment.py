"""`teachseg experiment`: the grid, reuse of finished runs, the report, and names checked before training."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from teachseg.cli import run
from teachseg.io import read_json


def test_unknown_architecture_fails_before_anything_trains(
    synth_data: Path, write_config: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(synth_data, experiment={"archs": ["linknet", "linkent"], "seeds": [1]})
    assert run(["experiment", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "linkent" in err and "fpn" in err  # names the bad one and lists valid ones
    assert not (tmp_path / "runs").exists()


def test_empty_seed_list_fails(
    synth_data: Path, write_config: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(synth_data, experiment={"archs": ["linknet"], "seeds": []})
    assert run(["experiment", str(cfg)]) == 2
    assert "seed list is empty" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_tiny_experiment_runs_reuses_and_reports(
    synth_data: Path, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    cfg = write_config(
        synth_data,
        experiment={"archs": ["linknet", "fpn"], "seeds": [3]},
        selftrain={"max_generations": 1, "tta": False},
    )
    assert run(["experiment", str(cfg)]) == 0
    exp = tmp_path / "runs" / "tiny"  # the config's name
    state = read_json(exp / "experiment.json")
    assert [(r["arch"], r["seed"], r["status"]) for r in state["runs"]] == [
        ("linknet", 3, "done"),
        ("fpn", 3, "done"),
    ]
    for r in state["runs"]:
        lineage = read_json(exp / r["dir"] / "lineage.json")
        assert lineage["generations"][0]["arch"] == r["arch"]
        assert lineage["generations"][0]["seed"] == 3
    html = (exp / "report" / "report.html").read_text(encoding="utf-8")
    assert "LinkNet" in html and "FPN" in html
    stamp = (exp / "linknet_seed3" / "summary.json").stat().st_mtime_ns
    assert run(["experiment", str(cfg)]) == 0  # finished runs are reused, not retrained
    assert (exp / "linknet_seed3" / "summary.json").stat().st_mtime_ns == stamp

    # reused runs give their planned epochs back: the whole command's estimate has nothing left to wait for
    from teachseg.config import load_config
    from teachseg.selftrain.experiment import planned_experiment_epochs, run_experiment
    from tests.training.test_progress import Recorder

    rec = Recorder()
    run_experiment(load_config(cfg), console=rec)
    assert sum(e[1] for e in rec.events if e[0] == "skip") == planned_experiment_epochs(load_config(cfg))[0]
    assert [e[1] for e in rec.events if e[0] == "stage"] == ["run 1/2", "run 2/2"]


def test_a_run_counts_as_finished_only_when_its_run_files_read(tmp_path: Path):
    import json

    from teachseg.runfiles import Lineage, NewerSchemaError, SelftrainSummary
    from teachseg.selftrain.experiment import finished

    assert not finished(tmp_path)
    Lineage(final_generation=0).write(tmp_path / "lineage.json")
    summary = SelftrainSummary(final_model="gen0/model", final_generation=0)
    summary.write(tmp_path / "summary.json")
    assert finished(tmp_path)
    (tmp_path / "summary.json").write_text("{torn")
    assert not finished(tmp_path)  # resumed, which rewrites it
    (tmp_path / "summary.json").write_text(json.dumps({**summary.to_data(), "schema_version": 99}))
    with pytest.raises(NewerSchemaError):
        finished(tmp_path)
