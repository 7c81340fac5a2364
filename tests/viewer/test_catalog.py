"""Reading a predict output folder: entries in cohort order, areas, moved slides, and outputs kept inside."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from teachseg.errors import DataError
from teachseg.viewer.catalog import load_catalog

from .conftest import set_summary


def test_entries_follow_cohort_csv_with_its_areas(predictions: Path):
    cat = load_catalog(predictions)
    assert [e.name for e in cat.entries] == ["square", "clear"]  # input order, not alphabetical
    square, clear = cat.entries
    assert square.tumour_area_mm2() == pytest.approx(512 * 384 * 0.5**2 / 1e6)
    assert clear.tumour_area_mm2() == 0
    assert square.slide == Path(square.summary.input) and square.slide.is_file()
    assert square.probability == (predictions / "square_prob.tif").resolve()
    assert square.outlines == (predictions / "square.geojson").resolve()
    assert square.mpp == 0.5 and cat.warnings == [] and square.problems == []


def test_cohort_csv_is_the_source_of_the_area(folder_copy: Path):
    csv = folder_copy / "cohort.csv"
    csv.write_text(csv.read_text().replace("0.049152", "1.5"))
    assert load_catalog(folder_copy).entries[0].tumour_area_mm2() == 1.5


@pytest.mark.parametrize("missing", [True, False])
def test_a_folder_without_predictions_names_itself_and_the_fix(tmp_path: Path, missing: bool):
    folder = tmp_path / "nothing"
    if not missing:
        folder.mkdir()
        (folder / "notes_summary.txt").write_text("not a summary")
    with pytest.raises(DataError) as err:
        load_catalog(folder)
    assert str(folder) in str(err.value) and "teachseg predict" in str(err.value)
    assert ("not found" if missing else "no prediction outputs") in str(err.value)


def test_a_moved_slide_is_a_problem_and_slide_dir_finds_it(moved: Path, tmp_path: Path):
    cat = load_catalog(moved)
    entry = cat.entries[0]
    assert entry.slide is None and entry.probability is not None and entry.outlines is not None
    gone = tmp_path / "slides" / "square.tif"
    assert len(entry.problems) == 1 and f"slide not found at {gone}, moved" in entry.problems[0]
    assert "--slide-dir" in entry.problems[0] and cat.warnings == [f"square: {entry.problems[0]}"]
    archive = tmp_path / "archive"
    assert load_catalog(moved, slide_dir=archive).entries[0].slide == archive / "square.tif"


def test_a_relative_slide_path_is_read_from_the_working_folder(
    folder_copy: Path, predictions: Path, monkeypatch
):
    set_summary(folder_copy, "square", "input", "square.tif")
    problems = load_catalog(folder_copy).entries[0].problems
    assert (
        "relative to where `teachseg predict` ran" in problems[0]
        and "run `teachseg view` where" in problems[0]
    )
    monkeypatch.chdir(predictions.parent)
    assert load_catalog(folder_copy).entries[0].slide == predictions.parent / "square.tif"


def test_a_summary_that_does_not_read_is_one_entry_with_a_problem(folder_copy: Path):
    (folder_copy / "clear_summary.json").write_text("{oops")
    square, clear = load_catalog(folder_copy).entries
    assert square.problems == [] and clear.summary is None
    assert "summary cannot be read" in clear.problems[0]
    assert clear.to_json()["tumour_area_mm2"] == 0  # cohort.csv still knows it


@pytest.mark.parametrize(
    "name, why",
    [
        ("../secret.txt", "not a file name"),
        ("sub/square.geojson", "not a file name"),
        ("ABSOLUTE", "not a file name"),
        ("gone.geojson", "missing"),
        ("link.geojson", "leads outside"),
        ("", "lists no"),
    ],
)
def test_outputs_outside_the_folder_are_refused(folder_copy: Path, name: str, why: str):
    secret = folder_copy.parent / "secret.txt"
    secret.write_text("SECRET")
    os.symlink(secret, folder_copy / "link.geojson")
    if name == "ABSOLUTE":
        name = str(secret)
    set_summary(folder_copy, "square", "outputs.geojson", name)
    entry = load_catalog(folder_copy).entries[0]
    assert entry.outlines is None and why in entry.problems[0]
    assert entry.probability is not None  # the other outputs are still shown


def test_a_link_inside_the_folder_is_followed(folder_copy: Path):
    os.symlink(folder_copy / "square.geojson", folder_copy / "alias.geojson")
    set_summary(folder_copy, "square", "outputs.geojson", "alias.geojson")
    assert load_catalog(folder_copy).entries[0].outlines == (folder_copy / "square.geojson").resolve()
