"""The command's live display: whole epoch lines that fit, the whole command's plan, Lightning's lines above it;
under ``train.stop: converge`` no total, no estimate, the stopping rule's state, one stop line."""

from __future__ import annotations

import io
import logging

import pytest
from rich.console import Console
from rich.progress import Progress
from rich.text import Text

from teachseg.cli._display import CommandDisplay, LeftColumn, fitted_epoch_line, live_possible
from teachseg.cli._logs import LogConsole
from teachseg.training.progress import Converging

ROW = {"epoch": 12, "train_loss": 1.23456, "val_loss": 0.5, "val_dice": 0.75, "val_jaccard": 0.6}
#: a converging fit's record has its step
STEP_ROW = {**ROW, "step": 72}
STATE = Converging(epoch=12, step=72, wait=3, patience=10, best=0.6123, best_epoch=9)


def _terminal(width: int = 80) -> LogConsole:
    return LogConsole(file=io.StringIO(), force_terminal=True, width=width)


@pytest.fixture
def no_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)


def test_epoch_line_fits_the_terminal() -> None:
    wide = fitted_epoch_line("gen1 Student", ROW, 30, 120)
    assert wide == (
        "gen1 Student epoch 12/30  train_loss 1.2346  val_loss 0.5000  val_dice 0.7500  val_jaccard 0.6000"
    )
    narrow = fitted_epoch_line("gen1 Student", ROW, 30, 80)
    assert narrow == "gen1 Student epoch 12/30  loss 1.2346  val: loss 0.5000  Dice 0.7500  IoU 0.6000"
    assert len(narrow) <= 80
    online = fitted_epoch_line("gen0 mean_teacher", {**ROW, "epoch": 2}, 8, 80)
    assert online == "gen0 mean_teacher epoch 2/8 loss 1.2346 val: loss 0.5000 Dice 0.7500 IoU 0.6000"
    tiny = fitted_epoch_line("gen12 mean_teacher", ROW, 300, 70)
    assert tiny.startswith("epoch 12/300  loss") and len(tiny) <= 70
    shortest = fitted_epoch_line("gen0 Teacher", ROW, 30, 40)  # nothing fits: the shortest form
    assert shortest == "epoch 12/30 loss 1.2346 val: loss 0.5000 Dice 0.7500 IoU 0.6000"


def test_live_only_where_a_person_watches(no_ci: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert live_possible(_terminal(), _terminal())
    assert not live_possible(_terminal(), LogConsole(file=io.StringIO()))  # `| tee`: results stay on stdout
    plain = _terminal()
    plain.log_format = "plain"
    assert not live_possible(plain, _terminal())
    monkeypatch.setenv("CI", "1")
    assert not live_possible(_terminal(), _terminal())


def test_off_a_terminal_the_epoch_is_the_log_line() -> None:
    buf = io.StringIO()
    console = LogConsole(file=buf)
    with CommandDisplay("train", console, LogConsole(file=io.StringIO()), total=30) as display:
        assert not display.live
        display.epoch("Teacher", ROW, 30)
    assert buf.getvalue() == (
        "epoch  12/30  train_loss 1.2346  val_loss 0.5000  val_dice 0.7500  val_jaccard 0.6000\n"
    )


def test_the_command_counts_the_epochs_it_trains(no_ci: None) -> None:
    # a loop that may train 2 + 3 x 2 epochs; its Teacher was finished earlier, a Student resumes at epoch 1
    display = CommandDisplay("selftrain", _terminal(), _terminal(), total=8, bound=True)
    with display:
        assert display.live
        display.skip_epochs(2)  # the Teacher: reused
        assert (display.done, display.total) == (0, 6)
        display.start("gen1 Student", 2, done=1)  # epoch 1 is in its checkpoint
        assert (display.done, display.total) == (0, 5)
        display.update(1.5, "epoch 2/2 · 2/4")
        assert (display.done, display.total) == (0.5, 5)
        display.update(2)
        display.finish()
        display.start("gen1 evaluation", 10, "image")
        display.update(10)
        display.finish()
        assert (display.done, display.total) == (1, 5)  # images are not the plan's unit
        display.skip_epochs(4)  # the no-gain rule stopped the loop: two Students fewer
        assert (display.done, display.total) == (1, 1)


def test_a_fit_that_stops_early_gives_back_its_epochs(no_ci: None) -> None:
    with CommandDisplay("experiment", _terminal(), _terminal(), total=10) as display:
        display.start("gen0 Teacher", 5)
        display.update(2)
        display.finish()  # the run failed in epoch 3
        assert (display.done, display.total) == (2, 7)


def test_time_left_is_the_average_pace_so_far() -> None:
    now = [0.0]
    progress = Progress(LeftColumn(), get_time=lambda: now[0])
    task_id = progress.add_task("selftrain", total=10, done0=0.0, bound=True)
    task = progress.tasks[0]
    assert LeftColumn().render(task).plain == ""  # nothing done yet: no estimate
    now[0] = 30.0
    progress.update(task_id, completed=3)
    assert LeftColumn().render(task).plain == "≤0:01:10 left"  # 30 s for 3 epochs, 7 to go; a bound
    phase = progress.add_task("gen1 Student", total=4, completed=2, done0=2.0, bound=False)
    now[0] = 40.0
    progress.update(phase, completed=3)  # resumed at 2: one epoch in 10 s
    assert LeftColumn().render(progress.tasks[1]).plain == "0:00:10 left"


def test_lightning_lines_go_above_the_bars(no_ci: None) -> None:
    logger = logging.getLogger("lightning.pytorch")
    level, before = logger.level, list(logger.handlers)
    stream = io.StringIO()
    straight = logging.StreamHandler(stream)  # what Lightning installs: the terminal as it was at import
    logger.addHandler(straight)
    console = _terminal(100)
    try:
        logger.setLevel(logging.INFO)
        with CommandDisplay("train", console, _terminal(100), total=2):
            assert straight not in logger.handlers
            logger.info("GPU available: False, used: False")
        assert straight in logger.handlers
    finally:
        logger.setLevel(level)
        logger.removeHandler(straight)
    assert logger.handlers == before
    assert stream.getvalue() == ""
    assert "GPU available: False, used: False" in console.file.getvalue()  # type: ignore[attr-defined]


def _drawn(display: CommandDisplay, width: int) -> list[str]:
    """The bars as they are drawn now, without colour (a pulsing bar then looks full)."""
    assert display._progress is not None
    c = Console(width=width, file=io.StringIO(), color_system=None)
    c.print(display._progress.get_renderable())
    return c.file.getvalue().splitlines()  # type: ignore[attr-defined]


def test_a_converging_epoch_line_has_its_step_and_no_total() -> None:
    wide = fitted_epoch_line("gen0 Teacher", STEP_ROW, None, 120)
    assert wide == (
        "gen0 Teacher epoch 12  step 72  train_loss 1.2346  val_loss 0.5000  val_dice 0.7500  val_jaccard 0.6000"
    )
    narrow = fitted_epoch_line("gen0 Teacher", {**STEP_ROW, "epoch": 2, "step": 6}, None, 80)
    assert narrow == "gen0 Teacher epoch 2 step 6 loss 1.2346 val: loss 0.5000 Dice 0.7500 IoU 0.6000"
    no_step = fitted_epoch_line("gen0 Teacher", STEP_ROW, None, 80)  # the phase matters more than the step
    assert no_step == "gen0 Teacher epoch 12 loss 1.2346 val: loss 0.5000 Dice 0.7500 IoU 0.6000"
    assert fitted_epoch_line("gen12 mean_teacher", STEP_ROW, None, 60).startswith("epoch 12 loss")
    buf = io.StringIO()  # off a terminal: the log line, the same rule
    with CommandDisplay("train", LogConsole(file=buf), LogConsole(file=io.StringIO()), total=None) as display:
        display.epoch("Teacher", STEP_ROW, None)
    assert buf.getvalue() == (
        "epoch  12  step   72  train_loss 1.2346  val_loss 0.5000  val_dice 0.7500  val_jaccard 0.6000\n"
    )


@pytest.mark.parametrize(
    ("width", "detail"),
    [
        (80, "epoch 12  best 0.6123 @ 9  3/10 no gain"),
        (120, "epoch 12 · step 72  best 0.6123 @ 9  3/10 no gain"),
        (140, "epoch 12 · step 72  best 0.6123 @ epoch 9  3/10 without gain"),
    ],
)
def test_a_converging_fit_shows_its_stopping_rule(no_ci: None, width: int, detail: str) -> None:
    with CommandDisplay("selftrain", _terminal(width), _terminal(width), total=None) as display:
        display.stage("gen 1 of at most 3", level=1)
        display.start("gen0 Teacher", None)
        assert _drawn(display, width)[0].split()[2:4] == ["epoch", "1"]  # before its first batch
        display.converging(STATE)
        phase, command = _drawn(display, width)
        phase_task, command_task = display._progress.tasks  # type: ignore[union-attr]
    # the phase's bar: how close the rule is to stopping; the command's: no total, so it pulses
    assert (phase_task.total, phase_task.completed) == (10, 3)
    assert command_task.total is None
    assert phase.startswith("gen0 Teacher ") and f" {detail} " in phase and len(phase) <= width
    assert command.startswith("selftrain ") and "gen 1 of at most 3" in command
    for line in (phase, command):  # elapsed, never an estimate or a total
        assert line.endswith("0:00:00") and "left" not in line and "/3333" not in line, line


def test_the_rule_before_its_first_evaluation() -> None:
    state = Converging(epoch=1, step=3, wait=0, patience=10)
    assert state.detail(80) == "epoch 1 · step 3  0/10 without gain"
    assert Converging(epoch=4, step=12, wait=0, patience=10, validating=True).detail() == (
        "epoch 4 · validation  0/10 without gain"
    )
    assert state.detail(5) == "epoch 1"  # nothing fits: the shortest


def test_a_converging_fit_makes_the_plan_unknown(no_ci: None) -> None:
    # an experiment planned from fixed-length runs meets a converging one: the whole is unknown from then on
    with CommandDisplay("experiment", _terminal(), _terminal(), total=10) as display:
        display.start("gen0 Teacher", 5)
        display.update(5)
        display.finish()
        display.start("gen0 Teacher", None)
        assert display.total is None
        display.converging(STATE)
        drawn = _drawn(display, 80)
        assert drawn[1].startswith("experiment") and not [line for line in drawn if "left" in line], drawn
        display.finish()
        display.skip_epochs(4)
        assert display.total is None
        assert display._progress.tasks[1].total is None  # type: ignore[union-attr]
    with CommandDisplay("experiment", _terminal(), _terminal(), total=10) as display:
        display.skip_epochs(None)  # a reused converging run: its epochs were never in the plan
        assert display.total is None


@pytest.mark.parametrize(
    ("width", "line"),
    [
        (
            140,
            "Teacher stopped at epoch 100 (step 300): the step cap was reached (train.converge.max_steps 300); "
            "best epoch 97 (step 291), val Dice 0.6412",
        ),
        (80, "Teacher stopped at epoch 100 (step cap 300); best epoch 97, Dice 0.6412"),
    ],
)
def test_the_stop_line_is_printed_once(no_ci: None, width: int, line: str) -> None:
    summary = {
        "stop": {"rule": "converge", "stopped_by": "max_steps", "patience": 10, "max_steps": 300},
        "epochs": 100,
        "steps": 300,
        "best_epoch": 97,
        "best_step": 291,
        "val_dice": 0.64125,
    }
    console = _terminal(width)
    with CommandDisplay("train", console, _terminal(width), total=None) as display:
        display.stopped("Teacher", summary)
    assert display.stops == ["Teacher"]
    printed = Text.from_ansi(console.file.getvalue()).plain.splitlines()  # type: ignore[attr-defined]
    assert [p for p in printed if "stopped" in p or "Dice" in p] == [line]  # whole, on one line
