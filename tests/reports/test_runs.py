from __future__ import annotations

import json
from pathlib import Path

import pytest

from teachseg.errors import DataError
from teachseg.reports.readers import Warnings
from teachseg.reports.runs import detect_kind, load, load_selftrain_run, load_train_run


def test_detects_each_folder_kind(experiment_dir: Path, train_run: Path, selftrain_run: Path):
    assert detect_kind(experiment_dir) == "experiment"
    assert detect_kind(experiment_dir / "linknet_seed21") == "selftrain"
    assert detect_kind(experiment_dir / "linknet_seed21" / "gen0") == "train"
    assert detect_kind(train_run) == "train"
    assert detect_kind(selftrain_run) == "selftrain"


def test_no_run_raises_a_one_line_data_error(tmp_path: Path):
    with pytest.raises(DataError, match="run folder not found"):
        detect_kind(tmp_path / "nope")
    with pytest.raises(DataError, match="no run found here"):
        detect_kind(tmp_path)


def test_corrupt_and_missing_files_become_warnings(train_run: Path):
    (train_run / "summary.json").write_text("{not json")
    (train_run / "val_per_image.csv").write_text("id,wrong\na,1\n")
    (train_run / "metrics.csv").write_text(
        "epoch,train_loss,val_loss,val_dice,val_jaccard\n1,0.5,0.6,0.7,0.5\n2,oops,0.5,0.8,0.6\n"
    )
    warn = Warnings()
    run = load_train_run(train_run, warn)
    text = "\n".join(warn)
    assert "summary.json: corrupt JSON" in text
    assert "val_per_image.csv: corrupt CSV: missing column(s) dice, jaccard" in text
    assert "metrics.csv: 1 malformed row(s) skipped" in text
    # what could be read is still used: best epoch and metrics come from metrics.csv
    assert run.summary is None and run.get("val_dice") == 0.7 and run.get("best_epoch") == 1
    assert run.get("arch") == "linknet"  # from config.yaml


def test_student_choice_final_or_best(selftrain_run: Path, tmp_path: Path):
    warn = Warnings()
    run = load_selftrain_run(selftrain_run, warn)
    assert sorted(run.generations) == [0, 1, 2] and not list(warn)
    student, note = run.student()
    assert note == "gen1 (best; none accepted)" and student is run.generations[1]
    lineage = json.loads((selftrain_run / "lineage.json").read_text())
    lineage["final_generation"] = 2
    (selftrain_run / "lineage.json").write_text(json.dumps(lineage))
    student, note = load_selftrain_run(selftrain_run, Warnings()).student()
    assert note == "gen2 (final)" and student is not None and student.path.name == "gen2"


def test_experiment_tolerates_missing_and_failed_runs(experiment_dir: Path, tmp_path: Path):
    meta = json.loads((experiment_dir / "experiment.json").read_text())
    meta["runs"].append({"arch": "fpn", "seed": 84, "dir": "fpn_seed84", "status": "failed"})
    meta["runs"].append({"arch": "fpn", "seed": 99, "dir": "fpn_seed99", "status": "done"})
    copy = tmp_path / "exp_copy"
    copy.mkdir()
    (copy / "experiment.json").write_text(json.dumps(meta))
    (copy / "linknet_seed21").symlink_to(experiment_dir / "linknet_seed21")
    warn = Warnings()
    kind, exp = load(copy, warn)
    assert kind == "experiment"
    text = "\n".join(warn)
    assert "fpn_seed84: run failed; not in the report" in text
    assert "fpn_seed99: run folder missing (marked done in experiment.json)" in text
    assert "config.yaml: missing" in text
    assert [e.run is not None for e in exp.entries] == [True, False, False, False, False, False]


def test_external_teacher_model_folder(selftrain_run: Path, tmp_path: Path):
    """selftrain.teacher_model: gen0 is a model folder elsewhere; its numbers come from lineage.json."""
    import shutil

    external = tmp_path / "pretrained"
    external.mkdir()
    (external / "config.json").write_text("{}")
    shutil.rmtree(selftrain_run / "gen0")
    lineage = json.loads((selftrain_run / "lineage.json").read_text())
    lineage["generations"][0]["run_dir"] = str(external)
    (selftrain_run / "lineage.json").write_text(json.dumps(lineage))
    warn = Warnings()
    run = load_selftrain_run(selftrain_run, warn)
    assert [w for w in warn] == [
        f"{external}: the Teacher is an external model folder: no training curves or per-image results for it"
    ]
    teacher = run.teacher
    assert teacher is not None and teacher.get("val_dice") == lineage["generations"][0]["val_dice"]


def test_a_summary_that_does_not_match_its_schema_is_a_warning_naming_the_field(train_run: Path):
    path = train_run / "summary.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "best_epoch": "last"}))
    warn = Warnings()
    run = load_train_run(train_run, warn)
    (line,) = [m for m in warn if m.startswith(str(path))]
    assert "does not match its schema: best_epoch" in line and line.endswith("skipped")
    assert run.summary is None and run.get("best_epoch") is not None  # from metrics.csv, as before


def test_old_run_files_are_read_as_typed_models(selftrain_run: Path):
    assert "schema_version" not in json.loads((selftrain_run / "lineage.json").read_text())
    run = load_selftrain_run(selftrain_run, Warnings())
    assert run.lineage is not None and run.summary is not None
    assert [g.generation for g in run.lineage.generations] == sorted(run.generations)
    assert run.final_generation() == run.lineage.final_generation
    teacher = run.teacher
    assert teacher is not None and teacher.summary is not None and teacher.summary.arch == teacher.get("arch")
