"""Typed run files: round trips, migration of 0.1 files, refusal of newer ones, clear errors."""

from __future__ import annotations

import json
import math

import pytest

from teachseg.runfiles import (
    SCHEMA_VERSION,
    GenerationEntry,
    Lineage,
    PredictSummary,
    RunFileError,
    SelftrainSummary,
    TrainSummary,
)


def _train_summary(**over):
    data = {
        "arch": "linknet",
        "encoder": "resnet34",
        "seed": 21,
        "epochs": 3,
        "best_epoch": 2,
        "val_dice": 0.71,
        "val": {
            "n": 2,
            "dice": 0.71,
            "jaccard": 0.6,
            "precision": math.nan,
            "recall": 0.8,
            "per_class": {"benign": {"n": 1, "dice": 0.7, "jaccard": 0.55}},
        },
        "test_dice": None,
        "generation": 1,
        "teacher": "gen0",
        "custom_key": [1, 2],
    }
    data.update(over)
    return data


def test_train_summary_round_trip_keeps_every_key(tmp_path):
    s = TrainSummary.from_data(_train_summary())
    path = s.write(tmp_path / "summary.json")
    raw = json.loads(path.read_text())
    assert raw["schema_version"] == SCHEMA_VERSION
    assert raw["custom_key"] == [1, 2]  # unknown keys survive
    assert raw["val"]["precision"] is None  # NaN is written as null (strict JSON)
    back = TrainSummary.read(path)
    assert back.val is not None and back.val.per_class is not None
    assert back.val.per_class["benign"].dice == 0.7
    assert back.val_dice == 0.71 and back.generation == 1 and back.teacher == "gen0"
    assert back.to_data() == raw


def test_file_from_teachseg_0_1_is_migrated(tmp_path):
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(_train_summary()))  # no schema_version: written by 0.1
    s = TrainSummary.read(path)
    assert s.schema_version == SCHEMA_VERSION
    assert s.arch == "linknet"


def test_newer_schema_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "summary.json"
    path.write_text(json.dumps({**_train_summary(), "schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(RunFileError) as err:
        TrainSummary.read(path)
    text = str(err.value)
    assert "newer teachseg" in text and str(path) in text and "upgrade" in text


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps({"encoder": "resnet34"}), "arch"),
        (json.dumps({**_train_summary(), "best_epoch": "two"}), "best_epoch"),
        (json.dumps({**_train_summary(), "schema_version": "1"}), "schema_version"),
    ],
)
def test_bad_files_name_the_file_and_the_field(tmp_path, content, needle):
    path = tmp_path / "summary.json"
    path.write_text(content)
    with pytest.raises(RunFileError) as err:
        TrainSummary.read(path)
    assert needle in str(err.value) and str(path) in str(err.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(RunFileError, match="missing"):
        Lineage.read(tmp_path / "lineage.json")


def test_lineage_entries_from_summaries(tmp_path):
    teacher = TrainSummary.from_data(_train_summary(generation=None, teacher=None, test_dice=0.6))
    lineage = Lineage(skipped_bad=[], unlabelled_excluded=2)
    lineage.generations.append(GenerationEntry.of(0, "teacher", teacher, "gen0", decision="initial teacher"))
    lineage.generations.append(
        GenerationEntry.of(1, "student", teacher, "gen1", accepted=True, gain=0.01, pseudo={"n": 3})
    )
    lineage.final_generation = 1
    back = Lineage.read(lineage.write(tmp_path / "lineage.json"))
    assert [g.generation for g in back.generations] == [0, 1]
    assert back.entry(0) is not None and back.entry(0).test_dice == 0.6
    assert back.entry(1) is not None and back.entry(1).accepted is True
    assert back.entry(2) is None
    assert back.unlabelled_excluded == 2


def test_selftrain_summary_nests_typed_models(tmp_path):
    s = SelftrainSummary.from_data(
        {
            "final_model": "gen1/model",
            "final_generation": 1,
            "teacher": _train_summary(generation=None, teacher=None),
            "best_student": _train_summary(),
            "stopped_because": "no gain",
            "n_labelled": 4,
            "n_unlabelled": 8,
        }
    )
    back = SelftrainSummary.read(s.write(tmp_path / "summary.json"))
    assert back.teacher is not None and back.teacher.arch == "linknet"
    assert back.best_student is not None and back.best_student.generation == 1


def test_predict_summary_outputs(tmp_path):
    s = PredictSummary.from_data(
        {
            "input": "a.svs",
            "kind": "slide",
            "width": 10,
            "height": 8,
            "outputs": {"mask": "a_mask.tif"},
            "geojson_area_px": 12.5,
        }
    )
    back = PredictSummary.read(s.write(tmp_path / "a_summary.json"))
    assert back.outputs == {"mask": "a_mask.tif"}
    assert back.model_extra is not None and back.model_extra["geojson_area_px"] == 12.5


def test_evaluate_summary_carries_every_split_score_that_summarise_computes() -> None:
    """``teachseg evaluate``'s flat ``summary.json`` repeats :class:`SplitScores`' fields (so that a user reads
    ``dice`` at the top level); the two lists must stay the same, and hold every key ``summarise`` writes,
    so that no score is left to the untyped extras of one file and typed in the other."""
    from teachseg.metrics import ImageScores, summarise
    from teachseg.runfiles import EvaluateSummary, RunFile, SplitScores

    own = set(EvaluateSummary.model_fields) - set(RunFile.model_fields)
    scores = own - {"model", "data", "tta", "backend", "inference_precision"}
    assert scores == set(SplitScores.model_fields)
    for name in scores:
        assert EvaluateSummary.model_fields[name].annotation == SplitScores.model_fields[name].annotation
    image = ImageScores(0.5, 1 / 3, 0.5, 0.5, tp=1, fp=1, fn=1, gt_pixels=2, pred_pixels=2)
    summed = summarise([image, image], ["benign", "malignant"])
    assert set(summed) <= scores
    written = EvaluateSummary.from_data({"model": "m", "data": "d", **summed})
    assert written.dice == 0.5 and written.per_class is not None and written.per_class["benign"].n == 1
    assert not (written.model_extra or {})  # nothing fell through to the extras
