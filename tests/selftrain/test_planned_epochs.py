"""The epochs a command plans to train: the total behind its whole-command estimate (see teachseg.cli._display)."""

from __future__ import annotations

import pytest

from teachseg.config import Config, build_config
from teachseg.selftrain import experiment
from teachseg.selftrain.experiment import planned_experiment_epochs
from teachseg.selftrain.methods import planned_epochs


def _cfg(**sections: object):
    """Fits of a known length: ``train.stop: epochs``, 30 epochs."""
    train = {"stop": "epochs", "epochs": 30, **sections.pop("train", {})}  # type: ignore[dict-item]
    return build_config({"train": train, **sections})


def test_a_loop_plans_its_teacher_and_every_student_it_may_train() -> None:
    # a Teacher and up to 3 Students; patience 1 may stop it sooner: a bound
    assert planned_epochs(_cfg(selftrain={"max_generations": 3, "patience": 1})) == (120, True)
    # patience as large as the cap: every generation runs, the plan is exact
    assert planned_epochs(_cfg(selftrain={"max_generations": 3, "patience": 3})) == (120, False)
    students = {"max_generations": 2, "patience": 1, "student": {"epochs": 10}}
    assert planned_epochs(_cfg(selftrain=students)) == (50, True)
    external = {"max_generations": 2, "patience": 2, "teacher_model": "elsewhere/model"}
    assert planned_epochs(_cfg(selftrain=external)) == (60, False)  # its Teacher is not trained here


def test_other_methods_train_once() -> None:
    for method in ("supervised", "mean_teacher", "fixmatch"):
        assert planned_epochs(_cfg(selftrain={"method": method})) == (30, False)


def test_an_experiment_plans_every_run() -> None:
    grid = {"archs": ["linknet", "fpn"], "seeds": [1, 2], "methods": ["supervised", "teacher_student"]}
    cfg = _cfg(experiment=grid, selftrain={"max_generations": 2, "patience": 1})
    # 4 supervised runs of 30 epochs, 4 loops of up to 30 + 2 x 30
    assert planned_experiment_epochs(cfg) == (4 * 30 + 4 * 90, True)
    only_supervised = _cfg(experiment={**grid, "methods": ["supervised"]})
    assert planned_experiment_epochs(only_supervised) == (4 * 30, False)


def test_converging_fits_have_no_plan() -> None:
    # the default stop rule: no fit's length is known, whatever train.epochs, the cap or the method says
    for method in ("teacher_student", "supervised", "mean_teacher", "fixmatch"):
        cfg = build_config({"train": {"epochs": 30}, "selftrain": {"method": method, "max_generations": 3}})
        assert cfg.train.stop == "converge"
        assert planned_epochs(cfg) == (None, False), method
    grid = {"archs": ["linknet", "fpn"], "seeds": [1, 2], "methods": ["supervised", "teacher_student"]}
    assert planned_experiment_epochs(build_config({"experiment": grid})) == (None, False)


def test_a_grid_with_one_converging_run_has_no_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    grid = {"archs": ["linknet", "fpn"], "seeds": [1], "methods": ["supervised"]}
    cfg = _cfg(experiment=grid)
    assert planned_experiment_epochs(cfg) == (60, False)
    of_the_grid = experiment.run_config

    def one_converges(cfg: Config, run: dict) -> Config:  # the grid cannot mix stop rules yet; a run may
        rcfg = of_the_grid(cfg, run)
        if run["arch"] == "fpn":
            rcfg = rcfg.model_copy(update={"train": rcfg.train.model_copy(update={"stop": "converge"})})
        return rcfg

    monkeypatch.setattr(experiment, "run_config", one_converges)
    assert planned_experiment_epochs(cfg) == (None, False)  # 30 known epochs and an unknown: unknown
