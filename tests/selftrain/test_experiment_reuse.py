"""An experiment reuses a finished run only when the run was made with the same config (issue 13)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from teachseg.cli import run
from teachseg.config import Config, build_config
from teachseg.errors import ConfigError
from teachseg.runfiles import GenerationEntry, Lineage
from teachseg.selftrain.experiment import check_reuse, plan, run_config, run_experiment
from teachseg.training.identity import record_config
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


def _val_dices(run_dir: Path) -> list[tuple[int, float | None, bool | None]]:
    from teachseg.runfiles import Lineage

    lineage = Lineage.read(run_dir / Lineage.FILE)
    return [(g.generation, g.val_dice, g.accepted) for g in lineage.generations]


def test_raising_the_generation_cap_extends_the_loop_and_reuses_the_other_methods(
    tmp_path: Path, synth_data: Path
) -> None:
    """An experiment whose loops the cap ended goes on from their last generation when the cap is raised,
    and ends with the loop a fresh run with that cap makes; the supervised runs are not retrained."""
    grid = {"methods": ["supervised", "teacher_student"], "archs": ["linknet"], "seeds": [0]}
    # patience 2: one rejected Student does not stop the loop, so the cap ends it whatever the Students score
    capped = _cfg(tmp_path, synth_data, selftrain={"max_generations": 1, "patience": 2}, experiment=grid)
    run_experiment(capped)
    ts = capped.run_dir / "teacher_student_linknet_seed0"
    sup = capped.run_dir / "supervised_linknet_seed0"
    assert [g for g, _, _ in _val_dices(ts)] == [0, 1]
    kept = {p: (ts / p).stat().st_mtime_ns for p in ("gen0/summary.json", "gen1/summary.json")}
    sup_done = (sup / "summary.json").stat().st_mtime_ns

    raised = _cfg(tmp_path, synth_data, selftrain={"max_generations": 2, "patience": 2}, experiment=grid)
    state = run_experiment(raised)  # no --overwrite needed: neither run is stale
    assert [r["status"] for r in state["runs"]] == ["done", "done"]
    assert (sup / "summary.json").stat().st_mtime_ns == sup_done  # reused as it was
    assert yaml.safe_load((sup / "config.yaml").read_text())["selftrain"]["max_generations"] == 1
    assert {p: (ts / p).stat().st_mtime_ns for p in kept} == kept  # generations 0 and 1 not retrained
    assert [g for g, _, _ in _val_dices(ts)] == [0, 1, 2]
    assert yaml.safe_load((ts / "config.yaml").read_text())["selftrain"]["max_generations"] == 2

    # the extended loop is the one a fresh run with the raised cap makes
    fresh = _cfg(
        tmp_path,
        synth_data,
        name="fresh",
        selftrain={"max_generations": 2, "patience": 2},
        experiment={**grid, "methods": ["teacher_student"]},
    )
    run_experiment(fresh)
    assert _val_dices(fresh.run_dir / "teacher_student_linknet_seed0") == _val_dices(ts)

    # once it went that far, a lower cap again is a different run: refused, naming the key
    with pytest.raises(ConfigError, match=r"selftrain.max_generations: 2 -> 1"):
        run_experiment(capped)


def test_a_raised_cap_on_a_loop_without_its_models_says_why_it_is_retrained(tmp_path: Path) -> None:
    """A cap-ended loop restored without weights (as from a benchmark ledger) cannot be continued: the refusal,
    and the retrain under --overwrite, say so and name the missing file, instead of only the changed cap."""
    grid = {"methods": ["teacher_student"], "archs": ["linknet"], "seeds": [0]}
    data = tmp_path / "data"
    capped = _cfg(tmp_path, data, selftrain={"max_generations": 1, "patience": 2}, experiment=grid)
    [run_] = plan(capped)
    rdir = capped.run_dir / run_["dir"]
    rdir.mkdir(parents=True)
    record_config(rdir, run_config(capped, run_))
    gens = [
        GenerationEntry(generation=0, role="teacher", run_dir="gen0", val_dice=0.5),
        GenerationEntry(generation=1, role="student", run_dir="gen1", val_dice=0.6, accepted=True),
    ]
    Lineage(generations=gens, method="teacher_student").write(rdir / Lineage.FILE)

    raised = _cfg(tmp_path, data, selftrain={"max_generations": 2, "patience": 2}, experiment=grid)
    with pytest.raises(ConfigError) as err:
        check_reuse(raised, plan(raised))
    text = str(err.value)
    assert "selftrain.max_generations: 1 -> 2" in text
    assert str(rdir / "gen0" / "model" / "model.safetensors") in text and "no weights" in text

    said: list[str] = []
    check_reuse(raised, plan(raised), overwrite=True, say=said.append)
    assert len(said) == 1 and "retrained from its first Teacher" in said[0] and "retraining" in said[0]
    assert not rdir.exists()
