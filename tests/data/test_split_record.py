"""The Split record: ``split.json`` round trip, files written before new fields, and broken files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from teachseg.data.split_record import Split
from teachseg.data.splits import make_split
from teachseg.errors import DataError
from tests.data.split_samples import class_samples, samples_with_duplicates


def test_save_load_round_trip_and_errors(tmp_path: Path) -> None:
    split = make_split(
        class_samples({"a": 8, "b": 4}, n_unlabelled=2),
        seed=0,
        val_fraction=0.25,
        label_fraction=0.5,
        group_regex="x",
    )
    split.save(tmp_path / "split.json")
    assert Split.load(tmp_path / "split.json") == split
    assert Split.from_json(json.loads(json.dumps(split.to_json()))) == split
    with pytest.raises(DataError, match="split file not found"):
        Split.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"train": 3}')
    with pytest.raises(DataError, match="bad.json"):
        Split.load(tmp_path / "bad.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(DataError, match="broken.json"):
        Split.load(tmp_path / "broken.json")


def test_new_split_fields_round_trip_and_old_files_still_load() -> None:
    samples, same = samples_with_duplicates()
    split = make_split(samples, seed=3, val_fraction=0.25, same_content=same)
    assert Split.from_json(json.loads(json.dumps(split.to_json()))) == split
    old = {
        k: v
        for k, v in split.to_json().items()
        if k
        in {
            "format",
            "train",
            "val",
            "test",
            "unlabelled",
            "label_dropped",
            "seed",
            "val_fraction",
            "test_fraction",
            "label_fraction",
            "group_regex",
            "classes",
        }
    }
    loaded = Split.from_json(old)
    assert loaded.groups == 0 and loaded.unlabelled_excluded == [] and loaded.duplicates == "off"
