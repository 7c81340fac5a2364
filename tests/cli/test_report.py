from __future__ import annotations

from pathlib import Path

from teachseg.cli import run
from tests.reports.fakeruns import make_dataset, make_train_run


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
