from __future__ import annotations

import json
from pathlib import Path

from teachseg.cli import run
from tests.reports.fakeruns import make_dataset, make_selftrain_run, make_train_run


def _run_folder(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    ids, masks = make_dataset(root, n=6)
    return make_train_run(tmp_path / "r1", ids=ids, masks=masks, root=root, test=False, epochs=3)


def test_report_prints_the_path_and_warnings(tmp_path: Path, capsys):
    run_dir = _run_folder(tmp_path)
    (run_dir / "summary.json").write_text("[oops")
    rc = run(["report", str(run_dir), "--out", str(tmp_path / "rep")])
    captured = capsys.readouterr()
    assert rc == 0
    assert captured.out.strip() == str(tmp_path / "rep" / "report.html")
    assert "summary.json: corrupt JSON" in captured.err and "1 problem(s)" in captured.err
    assert (tmp_path / "rep" / "report.html").is_file()


def test_report_on_a_missing_folder_is_a_one_line_error(tmp_path: Path, capsys):
    rc = run(["report", str(tmp_path / "nothing")])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert "run folder not found" in err and "Traceback" not in err


def test_report_help_lists_the_command():
    assert run(["report", "--help"]) == 0


def _selftrain_folder(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    ids, masks = make_dataset(root, n=8)
    return make_selftrain_run(tmp_path / "st", ids=ids, masks=masks, root=root, n_students=2, accept=True)


def test_report_reads_run_folders_written_by_teachseg_0_1(tmp_path: Path, capsys):
    """The fake runs are written as teachseg 0.1 wrote them: no schema_version in any run file."""
    run_dir = _selftrain_folder(tmp_path)
    files = [run_dir / "summary.json", run_dir / "lineage.json", *run_dir.glob("gen*/summary.json")]
    assert all("schema_version" not in json.loads(p.read_text()) for p in files)
    rc = run(["report", str(run_dir), "--out", str(tmp_path / "rep")])
    captured = capsys.readouterr()
    assert rc == 0 and captured.err.strip() == ""
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "Final model: generation 2." in html  # read from lineage.json


def test_report_on_a_newer_summary_warns_to_upgrade(tmp_path: Path, capsys):
    run_dir = _selftrain_folder(tmp_path)
    gen1 = run_dir / "gen1" / "summary.json"
    gen1.write_text(json.dumps({**json.loads(gen1.read_text()), "schema_version": 99}))
    rc = run(["report", str(run_dir), "--out", str(tmp_path / "rep")])
    err = capsys.readouterr().err
    assert rc == 0 and "Traceback" not in err and "KeyError" not in err
    (line,) = [x for x in err.splitlines() if str(gen1) in x]
    assert "newer teachseg" in line and "upgrade" in line
    assert (tmp_path / "rep" / "report.html").is_file()
