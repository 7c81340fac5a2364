"""Readable logs: full lines off a terminal, no boxes, and ``--log-format json`` for pipelines."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rich.table import Table

from teachseg.cli import run
from teachseg.cli._logs import LogConsole
from teachseg.training.fit import EpochRecorder


def _dataset(root: Path) -> Path:
    for name in ("a", "b"):
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "masks").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((10, 12, 3), 90, np.uint8)).save(root / "images" / f"{name}.png")
        mask = np.zeros((10, 12), np.uint8)
        mask[:5] = 255
        Image.fromarray(mask).save(root / "masks" / f"{name}_mask.png")
    return root


@pytest.fixture
def deep(tmp_path: Path) -> Path:
    return _dataset(tmp_path / ("a_folder_name_long_enough_to_pass_eighty_columns_" * 3))


def test_long_lines_are_not_wrapped_off_a_terminal(deep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["data", "check", str(deep)]) == 0
    text = capsys.readouterr().out
    assert str(deep) in text  # the path is on one line, whole
    assert not any(ch in text for ch in "┃│─━╭╰┏")  # no boxes


def test_json_lines_parse(deep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--log-format", "json", "data", "check", str(deep)]) == 0
    lines = capsys.readouterr().out.splitlines()
    records = [json.loads(line) for line in lines]
    assert records and all({"time", "level", "stream", "message"} <= set(r) for r in records)
    assert any(str(deep) in r["message"] for r in records)


def test_json_errors_parse_and_name_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yaml"
    assert run(["train", str(missing), "--log-format=json"]) != 0
    records = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert len(records) == 1 and records[0]["level"] == "error" and str(missing) in records[0]["message"]


def test_unknown_log_format_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--log-format", "xml", "models"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "xml" in err[0]


def test_epoch_line_is_one_line_in_a_log_file(tmp_path: Path) -> None:
    buf = io.StringIO()
    rec = EpochRecorder(tmp_path / "metrics.csv", 4, LogConsole(file=buf))

    class _T:
        sanity_checking, is_global_zero, max_epochs = False, True, 100

    class _M:
        history = [
            {"epoch": 7, "train_loss": 0.123456, "val_loss": 0.5, "val_dice": 0.75, "val_jaccard": 0.6}
        ]

    rec.on_validation_end(_T(), _M())  # type: ignore[arg-type]
    lines = buf.getvalue().splitlines()
    assert len(lines) == 1 and len(lines[0]) > 80 and lines[0].endswith("val_jaccard 0.6000")


def test_tables_become_rows_and_terminal_keeps_rich() -> None:
    table = Table(title="t")
    table.add_column("name")
    table.add_column("value")
    table.add_row("x" * 70, "y" * 40)
    plain = io.StringIO()
    LogConsole(file=plain).print(table)
    assert plain.getvalue().splitlines() == ["t", "name  value", "x" * 70 + "  " + "y" * 40]
    tty = io.StringIO()
    LogConsole(file=tty, force_terminal=True, width=60).print(table)
    assert "│" in tty.getvalue() or "┃" in tty.getvalue()
