"""The epochs a command plans to train: the total behind its whole-command estimate (see teachseg.cli._display)."""

from __future__ import annotations

from teachseg.config import build_config
from teachseg.selftrain.experiment import planned_experiment_epochs
from teachseg.selftrain.methods import planned_epochs


def _cfg(**sections: object):
    return build_config({"train": {"epochs": 30}, **sections})


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
