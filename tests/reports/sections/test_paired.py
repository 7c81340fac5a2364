"""Teacher-versus-Student statistics in the report: the image is the unit, and val-only comparisons say so."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from teachseg.reports import build_report_with_warnings
from tests.reports.fakeruns import make_experiment, make_replicated_experiment

LABEL = "selection-biased"


def _csv(path: Path) -> list[list[str]]:
    return list(csv.reader(path.open(encoding="utf-8")))


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("replicated")
    exp = make_replicated_experiment(base / "exp", base / "data", seeds=(21, 42, 84))
    build_report_with_warnings(exp)
    return exp


@pytest.fixture(scope="module")
def no_test_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("notest")
    exp = make_experiment(base / "exp", base / "data", test=False)
    return build_report_with_warnings(exp).folder


def _outputs(report: Path) -> dict[str, str]:
    files = ["tables/paired_dice.csv", "tables/paired_dice.md", "tables/paired_dice.tex"]
    files += ["tables.md", "tables.tex", "report.html"]
    return {f: (report / f).read_text(encoding="utf-8") for f in files}


def test_three_identical_seeds_give_the_n_and_interval_of_one(replicated: Path):
    rows = _csv(replicated / "report" / "tables" / "paired_dice.csv")
    header, body = rows[0], rows[1:]
    assert [r[0] for r in body] == ["LinkNet"] * 3 + ["LinkNet (all seeds)"]
    assert body[0][4:] == body[1][4:] == body[2][4:]  # the seeds are copies of each other
    n_col, ci_col, p_col = 4, 6, 7  # Images (n), 95% bootstrap CI, Wilcoxon p
    seed_row, pooled = body[0], body[-1]
    test_ids = json.loads((replicated / "linknet_seed21" / "split.json").read_text())["test"]
    assert int(pooled[n_col]) == len(set(test_ids)) == int(seed_row[n_col]), "n counts distinct images"
    assert pooled[n_col:] == seed_row[n_col:]  # same n, mean, interval, p-value and wins
    assert pooled[ci_col].startswith("[") and pooled[p_col] == seed_row[p_col]
    assert [header[n_col], header[ci_col], header[p_col]] == ["Images (n)", "95% bootstrap CI", "Wilcoxon p"]
    # the per-class table counts images too, not image-seed pairs
    per_class = _csv(replicated / "report" / "tables" / "linknet_per_class.csv")
    all_row = next(r for r in per_class if r[0] == "all")
    assert int(all_row[1]) == len(set(test_ids))


def _shift_test_images(run: Path, k: int) -> None:
    """Give a copied seed other test images: its first ``k`` test images become ``k`` training images (ids
    renamed in split.json and in every generation's test_per_image.csv, scores kept)."""
    split = json.loads((run / "split.json").read_text())
    renamed = dict(zip(split["test"][:k], split["train"][:k], strict=True))
    split["train"] = split["train"][k:] + split["test"][:k]
    split["test"] = [renamed.get(i, i) for i in split["test"]]
    (run / "split.json").write_text(json.dumps(split))
    for table in run.glob("gen*/test_per_image.csv"):
        rows = _csv(table)
        for row in rows[1:]:
            if row[0] in renamed:
                row[0] = renamed[row[0]]
                row[1] = row[0].split("/")[0]
        with table.open("w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows(rows)


def _html_rows(html: str, table_id: str) -> list[list[str]]:
    """The body rows of an HTML table, as the text of their cells."""
    table = html[html.index(f'id="{table_id}"') :]
    body = table[table.index("<tbody>") : table.index("</tbody>")]
    return [
        [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)
    ]


def test_report_shows_the_number_of_independent_images(tmp_path: Path):
    """Three seeds of six test images each, the third with three other images: nine independent images, which
    the report's table shows for the seeds together (not 18 image-seed pairs, nor one seed's 6)."""
    exp = make_replicated_experiment(tmp_path / "exp", tmp_path / "data", seeds=(21, 42, 84))
    _shift_test_images(exp / "linknet_seed84", 3)
    build_report_with_warnings(exp)
    html = (exp / "report" / "report.html").read_text(encoding="utf-8")
    assert "Images (n)" in html and "number of independent images" in html
    rows = _html_rows(html, "table-paired_dice")
    n = {row[0] + " " + row[1]: int(row[4]) for row in rows}
    assert n == {"LinkNet 21": 6, "LinkNet 42": 6, "LinkNet 84": 6, "LinkNet (all seeds) 21, 42, 84": 9}
    tests = [set(json.loads((exp / f"linknet_seed{s}" / "split.json").read_text())["test"]) for s in (21, 84)]
    assert len(tests[0] | tests[1]) == 9


def test_val_only_comparison_is_labelled_selection_biased(no_test_report: Path):
    outputs = _outputs(no_test_report)
    for name, text in outputs.items():
        assert LABEL in text, name
    for name in ("tables/paired_dice.md", "tables/paired_dice.tex", "report.html"):
        assert "test_fraction" in outputs[name].replace("\\_", "_"), name
    rows = _csv(no_test_report / "tables" / "paired_dice.csv")
    assert all(r[2] == f"val ({LABEL})" for r in rows[1:])
    assert 'class="alert"' in outputs["report.html"]


def test_test_split_comparison_is_not_labelled(experiment_report):
    outputs = _outputs(experiment_report.folder)
    for name, text in outputs.items():
        assert LABEL not in text, name
    rows = _csv(experiment_report.folder / "tables" / "paired_dice.csv")
    assert {r[2] for r in rows[1:]} == {"test"}
    assert 'class="alert"' not in outputs["report.html"]


def test_report_command_prints_the_selection_bias_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from teachseg.cli import run

    exp = make_experiment(tmp_path / "exp", tmp_path / "data", test=False)
    assert run(["report", str(exp), "--out", str(tmp_path / "rep")]) == 0
    err = capsys.readouterr().err
    assert "note:" in err and LABEL.capitalize() in err and "test_fraction" in err
