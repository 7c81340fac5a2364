"""Which config changes make a run folder stale: keys a method never reads do not, and a changed generation
cap does not when the loop, resumed, is the loop the new cap makes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from teachseg.config import Config, build_config
from teachseg.io import write_json
from teachseg.runfiles import GenerationEntry, Lineage
from teachseg.training.identity import (
    cap_change_holds,
    config_drift,
    missing_loop_models,
    needs_more_generations,
    record_config,
    why_not_extended,
)


def _cfg(method: str, **selftrain: Any) -> Config:
    return build_config({"data": {"root": "/data"}, "selftrain": {"method": method, **selftrain}}, "x")


def _run(tmp_path: Path, cfg: Config, accepted: list[bool] | None = None, weights: bool = False) -> Path:
    """A run folder made with ``cfg``; with ``accepted``, a teacher_student lineage with one Student per entry."""
    run_dir = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
    run_dir.mkdir()
    record_config(run_dir, cfg)
    if accepted is not None:
        gens = [GenerationEntry(generation=0, role="teacher", run_dir="gen0", val_dice=0.5)]
        gens += [
            GenerationEntry(generation=g, role="student", run_dir=f"gen{g}", val_dice=0.5, accepted=a)
            for g, a in enumerate(accepted, 1)
        ]
        Lineage(generations=gens, method="teacher_student").write(run_dir / Lineage.FILE)
        if weights:
            for g in range(len(gens)):
                (run_dir / f"gen{g}" / "model").mkdir(parents=True)
                (run_dir / f"gen{g}" / "model" / "model.safetensors").write_bytes(b"w")
    return run_dir


@pytest.mark.parametrize("method", ["supervised", "mean_teacher", "fixmatch"])
def test_the_loops_settings_do_not_make_other_methods_stale(tmp_path: Path, method: str) -> None:
    run_dir = _run(tmp_path, _cfg(method, max_generations=2))
    loop_changed = _cfg(
        method,
        max_generations=5,
        patience=2,
        pseudo_weight=0.5,
        tta=False,
        min_delta=0.01,
        confidence={"threshold": 0.8},
        student={"epochs": 3},
    )
    assert config_drift(run_dir, loop_changed) == []
    # what the method reads still counts
    changed = _cfg(method, max_generations=5, online={"unlabelled_weight": 2.0})
    drift = config_drift(run_dir, changed)
    if method == "supervised":
        assert drift == []
    else:
        assert drift == [("selftrain.online.unlabelled_weight", 1.0, 2.0)]
    # and so does everything outside selftrain
    reseeded = build_config({"data": {"root": "/data"}, "seed": 7, "selftrain": {"method": method}}, "x")
    assert config_drift(run_dir, reseeded) == [("seed", 42, 7)]


def test_a_method_change_is_drift_and_the_loop_ignores_the_online_settings(tmp_path: Path) -> None:
    run_dir = _run(tmp_path, _cfg("supervised"))
    assert ("selftrain.method", "supervised", "fixmatch") in config_drift(run_dir, _cfg("fixmatch"))
    ts = _run(tmp_path, _cfg("teacher_student"), accepted=[True])
    assert config_drift(ts, _cfg("teacher_student", online={"ema_decay": 0.9})) == []
    assert config_drift(ts, _cfg("teacher_student", pseudo_weight=0.0)) == [
        ("selftrain.pseudo_weight", 1.0, 0.0)
    ]


def test_a_raised_cap_keeps_a_loop_that_stopped_for_no_gain(tmp_path: Path) -> None:
    run_dir = _run(tmp_path, _cfg("teacher_student", max_generations=2), accepted=[True, False])
    raised = _cfg("teacher_student", max_generations=4)
    assert cap_change_holds(run_dir, raised) and not needs_more_generations(run_dir, raised)
    assert config_drift(run_dir, raised) == []
    # with patience 2 one rejection did not end it: the cap did, so the loop goes on (given its models)
    patient = _cfg("teacher_student", max_generations=4, patience=2)
    assert needs_more_generations(run_dir, patient)
    assert ("selftrain.max_generations", 2, 4) in config_drift(run_dir, patient)


def test_a_raised_cap_extends_a_loop_the_cap_ended_only_when_its_models_are_there(tmp_path: Path) -> None:
    made = _cfg("teacher_student", max_generations=2)
    raised = _cfg("teacher_student", max_generations=3)
    without = _run(tmp_path, made, accepted=[True, True])
    assert needs_more_generations(without, raised)
    # the weights were not kept (a ledger copy): resuming cannot go on, so the run is stale
    assert config_drift(without, raised) == [("selftrain.max_generations", 2, 3)]
    with_models = _run(tmp_path, made, accepted=[True, True], weights=True)
    assert needs_more_generations(with_models, raised)
    assert config_drift(with_models, raised) == []
    # the same cap, or a run with as many Students as the new cap: nothing to add
    assert not needs_more_generations(with_models, made)
    assert not needs_more_generations(with_models, _cfg("teacher_student", max_generations=2, patience=3))


def test_a_loop_that_cannot_be_extended_names_the_missing_weights(tmp_path: Path) -> None:
    made = _cfg("teacher_student", max_generations=2)
    raised = _cfg("teacher_student", max_generations=3)
    without = _run(tmp_path, made, accepted=[True, True])
    missing = missing_loop_models(without, raised)
    assert missing == [without / f"gen{g}" / "model" / "model.safetensors" for g in range(3)]
    why = why_not_extended(without, raised, config_drift(without, raised))
    assert (
        str(missing[0]) in why and "and 2 more are missing" in why and "ledger" in why and "retrained" in why
    )
    # nothing to say when the models are there, when the loop need not go on, or when other keys changed too
    with_models = _run(tmp_path, made, accepted=[True, True], weights=True)
    assert missing_loop_models(with_models, raised) == []
    assert why_not_extended(with_models, raised, [("selftrain.max_generations", 2, 3)]) == ""
    assert missing_loop_models(without, made) == []
    both = [("selftrain.max_generations", 2, 3), ("train.lr", 0.001, 0.01)]
    assert why_not_extended(without, raised, both) == ""


def test_a_lowered_cap_below_the_students_trained_is_drift(tmp_path: Path) -> None:
    run_dir = _run(tmp_path, _cfg("teacher_student", max_generations=3), accepted=[True, False])
    assert config_drift(run_dir, _cfg("teacher_student", max_generations=2)) == []
    assert config_drift(run_dir, _cfg("teacher_student", max_generations=1)) == [
        ("selftrain.max_generations", 3, 1)
    ]


def test_a_run_without_a_lineage_yet_follows_the_new_cap(tmp_path: Path) -> None:
    run_dir = _run(tmp_path, _cfg("teacher_student", max_generations=3))
    assert config_drift(run_dir, _cfg("teacher_student", max_generations=1)) == []
    write_json(run_dir / Lineage.FILE, {"schema_version": 1, "generations": "damaged"})
    assert config_drift(run_dir, _cfg("teacher_student", max_generations=5)) == []


def _before_train_stop(run_dir: Path, cfg: Config, scheduler: str) -> None:
    """``run_dir`` as teachseg wrote it before ``train.stop`` existed: no such key, and the schedule by name."""
    import json

    import yaml

    from teachseg.training.identity import RUN_IDENTITY, config_fields

    fields = {
        k: v for k, v in config_fields(cfg).items() if not k.startswith(("train.stop", "train.converge"))
    }
    fields["train.scheduler"] = scheduler
    (run_dir / RUN_IDENTITY).write_text(json.dumps({"config": fields}))
    data = cfg.to_dict()
    del data["train"]["stop"], data["train"]["converge"]
    data["train"]["scheduler"] = scheduler
    (run_dir / "config.yaml").write_text(yaml.safe_dump(data))


@pytest.mark.parametrize(
    ("identity_file", "scheduler"),
    [(True, "cosine"), (False, "cosine"), (False, "none")],
    ids=["run_identity.json", "config.yaml only", "config.yaml, no schedule"],
)
def test_a_folder_from_before_train_stop_trained_for_fixed_epochs(
    tmp_path: Path, identity_file: bool, scheduler: str
) -> None:
    old = tmp_path / "old"
    old.mkdir()
    _before_train_stop(old, build_config({"data": {"root": "/data"}}, "x"), scheduler)
    if not identity_file:
        (old / "run_identity.json").unlink()
    # the new default converges, which that run did not: it cannot be reused as if it had
    changes = config_drift(old, build_config({"data": {"root": "/data"}}, "x"))
    assert [(k, a, b) for k, a, b in changes] == [
        ("train.scheduler", scheduler, "plateau"),
        ("train.stop", "epochs", "converge"),
    ]
    # with stop: epochs it is the same run (scheduler auto means the cosine it recorded)
    same = {"stop": "epochs"} if scheduler == "cosine" else {"stop": "epochs", "scheduler": scheduler}
    assert config_drift(old, build_config({"data": {"root": "/data"}, "train": same}, "x")) == []
