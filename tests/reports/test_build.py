from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from teachseg.errors import OutputError
from teachseg.reports import build_report, build_report_with_warnings
from tests.reports.conftest import XSS_CONFIG, XSS_ID


def _csv(path: Path) -> list[list[str]]:
    return list(csv.reader(path.open(encoding="utf-8")))


def test_experiment_report_has_the_papers_tables(experiment_report, experiment_dir: Path):
    out = experiment_dir / "report"
    assert experiment_report.html == out / "report.html" and experiment_report.warnings == []
    for arch in ("linknet", "fpn"):
        for part in ("teacher", "student", "comparison"):
            for ext in ("csv", "md", "tex"):
                assert (out / "tables" / f"{arch}_{part}.{ext}").is_file()
    teacher = _csv(out / "tables" / "linknet_teacher.csv")
    assert teacher[0][:5] == [
        "Seed",
        "Training Loss",
        "Validation Dice",
        "Validation Jaccard",
        "Optimum Epoch",
    ]
    assert [r[0] for r in teacher[1:]] == ["21", "42", "Mean ± SD", "95% CI (t)"]
    assert "Test Dice" in teacher[0]  # the fake runs have a test split
    comp = _csv(out / "tables" / "fpn_comparison.csv")
    assert (
        comp[0][:4] == ["Seed", "Teacher TL", "Teacher VD", "Teacher VJ"] and comp[0][-1] == "Student model"
    )
    assert comp[1][-1] == "gen1 (final)" and comp[2][-1] == "gen1 (best; none accepted)"
    assert [r[0] for r in comp[3:]] == ["Average", "SD", "95% CI (t)"]
    paired = _csv(out / "tables" / "paired_dice.csv")
    scopes = [r[0] for r in paired[1:]]
    assert scopes == ["LinkNet", "LinkNet", "LinkNet (all seeds)", "FPN", "FPN", "FPN (all seeds)", "Overall"]
    assert {r[2] for r in paired[1:3]} == {"test"}
    assert (out / "tables.md").read_text().count("**") > 10 and "\\begin{tabular}" in (
        out / "tables.tex"
    ).read_text()


def test_experiment_report_figures_and_html(experiment_report, experiment_dir: Path):
    out = experiment_dir / "report"
    names = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert "curves_linknet_seed21.png" in names and "curves_fpn_seed42.png" in names
    for kind in ("fixed", "best", "worst"):
        assert f"overlay_linknet_seed21_{kind}.png" in names
    assert "linknet_seed21_pseudo_gen1.png" in names and "dice_by_class_fpn.png" in names
    for n in names:
        with Image.open(out / "figures" / n) as im:
            assert im.format == "PNG" and np.asarray(im.convert("L")).std() > 5
    html = experiment_report.html.read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == len(names)
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", html), (
        "the report must not load anything external"
    )
    assert "<script" not in html
    for section in ("Setup", "Teacher versus Student", "Lineage", "Worst cases", "Reproduce", "abc123def456"):
        assert section in html
    assert "teachseg experiment" in html and "segmentation-models-pytorch" in html
    assert html.count("<table") == len(list((out / "tables").glob("*.csv")))


def test_hostile_names_are_escaped(xss_report: Path):
    html = xss_report.read_text(encoding="utf-8")
    assert XSS_ID not in html and XSS_CONFIG not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.png" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script" not in html.lower() and "onerror=" not in html.replace("onerror=alert(1)&gt;", "")
    names = [p.name for p in (xss_report.parent / "figures").iterdir()] + [
        p.name for p in (xss_report.parent / "tables").iterdir()
    ]
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", n) for n in names)


def test_selftrain_report_with_rejected_students(selftrain_run: Path, tmp_path: Path):
    res = build_report_with_warnings(selftrain_run, tmp_path / "rep")
    assert res.html == tmp_path / "rep" / "report.html" and res.warnings == []
    lineage = _csv(tmp_path / "rep" / "tables" / "lineage_st_run.csv")
    assert [r[0] for r in lineage[1:]] == ["0", "1", "2"]
    assert (
        lineage[2][-1].startswith("rejected")
        and lineage[0][-2] == "Pseudo Dice*"
        and lineage[2][-2] == "0.810000"
    )
    comp = _csv(tmp_path / "rep" / "tables" / "linknet_comparison.csv")
    assert comp[1][-1] == "gen1 (best; none accepted)"
    assert (tmp_path / "rep" / "figures" / "st_run_pseudo_gen2.png").is_file()


def test_train_report_without_test_split_and_rebuild(train_run: Path, tmp_path: Path):
    html = build_report(train_run)
    assert html == train_run / "report" / "report.html"
    summary = _csv(train_run / "report" / "tables" / "summary.csv")
    assert summary[0][:4] == ["Run", "Arch", "Seed", "Train Loss"]
    assert (train_run / "report" / "figures" / "overlay_worst.png").is_file()
    text = html.read_text(encoding="utf-8")
    assert "val split" in text and "Teacher versus Student" not in text
    # a rebuild replaces the whole folder (no stale files) ...
    stale = train_run / "report" / "figures" / "stale.png"
    stale.write_bytes(b"x")
    build_report(train_run)
    assert not stale.exists() and html.is_file()
    # ... but never a folder that is not a report
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep me")
    with pytest.raises(OutputError, match="refusing to replace"):
        build_report(train_run, foreign)
    assert (foreign / "thesis.tex").read_text() == "keep me"


def test_damaged_run_builds_what_it_can(selftrain_run: Path):
    (selftrain_run / "gen1" / "summary.json").write_text("{broken")
    (selftrain_run / "gen2" / "metrics.csv").unlink()
    index = json.loads((selftrain_run / "gen0" / "pred" / "index.json").read_text())
    shown = min(json.loads((selftrain_run / "split.json").read_text())["test"])  # first fixed example
    first = index[shown]
    (selftrain_run / "gen0" / "pred" / "test" / f"{first}_prob.png").write_bytes(b"not a png")
    res = build_report_with_warnings(selftrain_run)
    text = "\n".join(res.warnings)
    assert "gen1/summary.json: corrupt JSON" in text
    assert "gen2/metrics.csv: missing" in text
    assert f"{first}_prob.png: unreadable image" in text
    html = res.html.read_text(encoding="utf-8")
    assert "problems with the run files" in html and "gen2/metrics.csv" in html
    assert (res.html.parent / "warnings.txt").read_text().count("\n") == len(res.warnings)


def _section_ids(html: str) -> list[str]:
    return re.findall(r'<section id="([^"]+)"', html)


def test_experiment_report_holds_every_section_table_and_figure(experiment_report, experiment_dir: Path):
    """Each section builder contributes, in page order, and nothing goes missing between them."""
    out = experiment_dir / "report"
    html = experiment_report.html.read_text(encoding="utf-8")
    assert _section_ids(html) == [
        "setup",
        "arch-linknet",
        "arch-fpn",
        "paired",
        "curves",
        "overlays",
        "pseudo",
        "distribution",
        "lineage",
        "worst",
        "reproduce",
    ]
    runs = [f"{a}_seed{s}" for a in ("linknet", "fpn") for s in (21, 42)]
    tables = ["splits"]
    tables += [f"{a}_{part}" for a in ("linknet", "fpn") for part in ("teacher", "student", "comparison")]
    tables += ["paired_dice", "pseudo_labels", "linknet_per_class", "fpn_per_class"]
    tables += [f"lineage_{r}" for r in runs] + ["worst_cases"]
    assert re.findall(r'<table id="table-([^"]+)"', html) == tables  # page order
    for ext in ("csv", "md", "tex"):
        assert {p.stem for p in (out / "tables").glob(f"*.{ext}")} == set(tables)
    md_titles = re.findall(r"^\*\*(.+)\*\*$", (out / "tables.md").read_text(encoding="utf-8"), re.M)
    assert len(md_titles) == len(tables)
    figures = {f"curves_{r}" for r in runs} | {"dice_by_class_linknet", "dice_by_class_fpn"}
    figures |= {f"overlay_{a}_seed21_{k}" for a in ("linknet", "fpn") for k in ("fixed", "best", "worst")}
    figures |= {f"{a}_seed21_pseudo_gen1" for a in ("linknet", "fpn")}
    assert {p.stem for p in (out / "figures").glob("*.png")} == figures


def test_train_report_holds_every_section(train_run: Path, tmp_path: Path):
    html = build_report(train_run, tmp_path / "rep")
    assert _section_ids(html.read_text(encoding="utf-8")) == [
        "setup",
        "results",
        "curves",
        "overlays",
        "distribution",
        "worst",
        "reproduce",
    ]
    assert {p.stem for p in (tmp_path / "rep" / "tables").glob("*.csv")} == {
        "splits",
        "summary",
        "per_class",
        "worst_cases",
    }
    assert {p.stem for p in (tmp_path / "rep" / "figures").glob("*.png")} == {
        "curves",
        "dice_by_class",
        "overlay_fixed",
        "overlay_best",
        "overlay_worst",
    }
