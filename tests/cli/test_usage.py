"""A new user's first mistakes: a mistyped command or option is a usage message with exit status 2, and
``teachseg --help`` lists the commands in the order of the work."""

from __future__ import annotations

import json
import re

import pytest

from teachseg.cli import run
from teachseg.cli._app import COMMAND_ORDER


def _usage(args: list[str], capsys: pytest.CaptureFixture[str]) -> list[str]:
    """Run the CLI, expect a usage error (exit 2, no traceback, no "unexpected"); its stderr lines."""
    capsys.readouterr()
    code = run(args)
    err = capsys.readouterr().err
    assert code == 2, (code, err)
    assert "Traceback" not in err and "unexpected" not in err, err
    return err.splitlines()


def test_mistyped_command(capsys: pytest.CaptureFixture[str]) -> None:
    lines = _usage(["trian"], capsys)
    assert lines[0].startswith("Usage: teachseg ") and "teachseg --help" in lines[1]
    # click suggests the closest names first ('pretrain' is close too)
    assert any(line.startswith("error: No such command 'trian'. Did you mean 'train'") for line in lines), (
        lines
    )
    listed = next(line for line in lines if line.startswith("commands: "))
    names = listed.removeprefix("commands: ").split(", ")
    assert [n for n in names if n in ("demo", "data", "train", "selftrain")] == [
        "demo",
        "data",
        "train",
        "selftrain",
    ]
    assert names[0] == "demo" and len(names) == len(set(names)) > 10


def test_mistyped_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    lines = _usage(["data", "chek"], capsys)
    assert "error: No such command 'chek'. Did you mean 'check'?" in lines
    assert "commands: check, synth, tile" in lines


def test_mistyped_option(capsys: pytest.CaptureFixture[str]) -> None:
    lines = _usage(["train", "--overwrit", "config.yaml"], capsys)
    assert lines[0].startswith("Usage: teachseg train ")
    assert "error: No such option: --overwrit. Did you mean --overwrite?" in lines
    options = next(line for line in lines if line.startswith("options of teachseg train: "))
    assert {"--set", "--resume", "--overwrite", "--progress/--no-progress", "--help"} <= set(
        options.split(": ", 1)[1].split(", ")
    )


def test_unknown_option_without_a_near_name(capsys: pytest.CaptureFixture[str]) -> None:
    lines = _usage(["train", "--bogus"], capsys)
    assert "error: No such option: --bogus" in lines
    assert any(line.startswith("options of teachseg train: ") for line in lines)


def test_missing_argument(capsys: pytest.CaptureFixture[str]) -> None:
    lines = _usage(["train"], capsys)
    assert any(line.startswith("error: Missing argument") for line in lines), lines


def test_usage_error_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    records = [json.loads(line) for line in _usage(["--log-format", "json", "trian"], capsys)]
    errors = [r for r in records if r["level"] == "error"]
    assert len(errors) == 1 and "Did you mean 'train'" in errors[0]["message"]


def test_help_lists_the_commands_in_the_order_of_the_work(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--help"]) == 0
    text = capsys.readouterr().out
    commands = text[text.index("Commands") :]
    listed = re.findall(r"^\W*([a-z]+)\s{2,}\S", commands, re.MULTILINE)
    expected = [name for name in COMMAND_ORDER if name in listed]
    assert listed == expected, listed
    # the order of the work; commands added since (pretrain, suggest, view) fit between them
    work = ["demo", "data", "train", "selftrain", "experiment", "report", "predict", "export"]
    assert [name for name in listed if name in work] == work
    assert listed[0] == "demo" and listed.index("suggest") < listed.index("report")


def test_verbose_is_a_global_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["data", "--verbose", "--help"]) == 0
    assert "check" in capsys.readouterr().out
