"""One live display per command: a bar for the current phase and one for the whole command, lines above.

Drawn only where a person watches it: stderr and stdout on a terminal, ``--log-format auto`` or ``rich``, no
``CI`` variable, and progress not turned off (``--no-progress``, ``train.progress_bar: false``). Anywhere else
the same calls print the plain whole lines they always did (see :mod:`teachseg.cli._logs`).

Every finished epoch is one whole line above the bars, fitted to the terminal's width (shorter names, then no
phase name) so that it is not wrapped. The whole command's estimate comes from its plan, the epochs of every fit it may train (inputs, for
``predict``): time so far over units done so far, times the units left; so pseudo-labels and evaluation count
in the time per epoch. When the plan is only an upper bound (a teacher_student loop may stop before its
generation cap) the estimate says so (``≤0:03:10 left``), beside where the command is (``gen 1 of at most 3``).
Lightning's log lines (shown with ``--verbose``) are printed above the bars too.

Under ``train.stop: converge`` (the default) no fit has a known end, so the command has no plan (total None):
its bar is indeterminate and shows the elapsed time and where the command is, never an estimate (the epoch cap
derived from ``train.converge.max_steps`` is a guard, not a plan), and the column of estimates is left out. A
converging fit's bar fills with the evaluations without a gain out of the patience, so it is full when the fit
stops and empties at every gain; beside it the epoch and step, the best validation Dice with its epoch, and
``3/10 without gain`` (see :class:`~teachseg.training.progress.Converging`). Its epoch lines have no total
(``epoch 12  step 72``), and when it stops one line says why and where.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.table import Column
from rich.text import Text

from teachseg.cli._logs import LogConsole
from teachseg.training.progress import EPOCH, Converging, Reporter, epoch_head, epoch_line, stop_lines

#: Loggers whose lines go above the bars while they are drawn (instead of straight to the terminal).
LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning")


def live_possible(console: LogConsole, out: LogConsole) -> bool:
    """Whether a live display can be drawn: both streams on a terminal, rich output, not under CI.

    stdout must be a terminal too: what a pipe's reader (``| tee``) echoes to the terminal would cross the
    bars, which only know of what is printed through them.
    """
    return console.mode == "rich" and console.is_terminal and out.is_terminal and not os.environ.get("CI")


def fitted_epoch_line(phase: str, row: Mapping[str, float], epochs: int | None, width: int) -> str:
    """A finished epoch as one line of at most ``width`` characters when it can be: the names of
    ``metrics.csv``'s columns and the phase where they fit; else shorter names, single spaces, no phase.
    ``epochs`` None: a converging fit's epoch, with its step (left out before the phase is) and no total.

    >>> row = {"epoch": 1, "step": 3, "train_loss": 1.5, "val_loss": 1.25, "val_dice": 0.5, "val_jaccard": 0.25}
    >>> fitted_epoch_line("gen1 Student", row, 2, 80)
    'gen1 Student epoch 1/2  loss 1.5000  val: loss 1.2500  Dice 0.5000  IoU 0.2500'
    >>> fitted_epoch_line("gen1 Student", row, None, 80)
    'gen1 Student epoch 1 step 3 loss 1.5000 val: loss 1.2500 Dice 0.5000 IoU 0.2500'
    >>> fitted_epoch_line("gen1 Student", {**row, "epoch": 120, "step": 360}, None, 80)
    'gen1 Student epoch 120 loss 1.5000 val: loss 1.2500 Dice 0.5000 IoU 0.2500'
    """
    head = epoch_head(row, epochs)
    full = epoch_line(row, epochs).replace(epoch_head(row, epochs, align=True), head, 1)
    scores = (
        f"loss {row['train_loss']:.4f}  val: loss {row['val_loss']:.4f}  "
        f"Dice {row['val_dice']:.4f}  IoU {row['val_jaccard']:.4f}"
    )
    short = f"{head}  {scores}"
    tight = short.replace("  ", " ")
    # a converging fit's epoch without its step (the bar shows the step)
    bare = f"epoch {int(row['epoch'])} {scores.replace('  ', ' ')}" if epochs is None else tight
    for line in (f"{phase} {full}", f"{phase} {short}", f"{phase} {tight}", f"{phase} {bare}", short, tight):
        if len(line) <= width:
            return line
    return min(tight, bare, key=len)


def fitted_line(forms: list[str], console: LogConsole) -> str:
    """The first of ``forms`` (longest first) that fits ``console``'s width on a terminal in rich output,
    the shortest when none does; the first (the full line) anywhere else."""
    if console.mode != "rich" or not console.is_terminal:
        return forms[0]
    return next((f for f in forms if len(f) <= console.width), forms[-1])


def clock(seconds: float) -> str:
    """``0:01:05`` for 65.4 s."""
    return str(timedelta(seconds=max(0, int(seconds))))


class LeftColumn(ProgressColumn):
    """What is left of a task at its average pace so far: ``0:00:40 left``, or ``≤0:00:40 left`` for a bound."""

    def render(self, task: Task) -> Text:
        done = task.completed - float(task.fields.get("done0", 0.0))
        if task.fields.get("open") or task.elapsed is None or task.total is None or done <= 0:
            return Text("")
        left = task.elapsed * max(task.total - task.completed, 0.0) / done
        bound = "≤" if task.fields.get("bound") else ""
        return Text(f"{bound}{clock(left)} left", style="progress.remaining")


@dataclass
class _Phase:
    """The current phase: ``total`` units (None: a converging fit, of no known length), ``done0`` of them
    done before it started, ``completed`` now; it stands for ``counts`` of the command's units."""

    unit: str
    total: float | None
    done0: float
    completed: float
    counts: float

    @property
    def share(self) -> float:
        """How much of its own work the phase has done, 0 to 1 (0 for a phase of no known length)."""
        if self.total is None:
            return 0.0
        return min(max((self.completed - self.done0) / max(self.total - self.done0, 1e-9), 0.0), 1.0)


class _AboveTheBars(logging.Handler):
    """A logging handler that prints each record as a whole line above the bars."""

    def __init__(self, display: CommandDisplay):
        super().__init__()
        self.display = display

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.display.print(self.format(record), markup=False, highlight=False)
        except Exception:  # a log line must never stop training
            self.handleError(record)


class CommandDisplay(Reporter):
    """The display of one command; use it as a context manager around the work.

    Args:
        title: the command (``train``, ``selftrain``, ...), the whole command's bar's label.
        console: where messages and the bars go (stderr).
        out: the results' console (stdout); the bars are drawn only when it is a terminal too.
        total: the command's plan, in ``unit``s (epochs: see :mod:`teachseg.training.progress`); None: not
            known (a fit that converges), so there is no estimate.
        bound: ``total`` is an upper bound, not the exact plan.
        unit: what ``total`` counts; phases of that unit add up to the command's progress.
        enabled: False draws nothing (``--no-progress``); lines are printed all the same.
    """

    def __init__(
        self,
        title: str,
        console: LogConsole,
        out: LogConsole,
        *,
        total: float | None = 0,
        bound: bool = False,
        unit: str = EPOCH,
        enabled: bool = True,
    ) -> None:
        super().__init__(console)
        self.title = title
        self.out = out
        self.total: float | None = None if total is None else float(total)
        self.bound = bound
        self.unit = unit
        self.stops: list[str] = []  # the phases whose stop line was printed
        self.detail_width = 40  # the phase's detail column, set when the bars are drawn
        self.live = enabled and live_possible(console, out)
        self.credited = 0.0  # the command's units done by phases that finished
        self._phase: _Phase | None = None
        self._stages: dict[int, str] = {}
        self._progress: Progress | None = None
        self._handler: logging.Handler | None = None
        self._saved_handlers: dict[str, list[logging.Handler]] = {}

    # --- the live display -----------------------------------------------------------------------------

    def __enter__(self) -> CommandDisplay:
        if not self.live:
            return self
        # fixed widths, so a long detail is cut short rather than squeezing the bar and the estimate away;
        # a command of unknown length estimates nothing, and its estimates' column makes room for the detail
        width = self.console.width
        name_width, bar_width = min(22, max(12, width // 5)), max(10, min(30, width - 76))
        name = Column(width=name_width, no_wrap=True, overflow="ellipsis")
        estimates = self.total is not None
        left = [LeftColumn()] if estimates else []
        room = width - name_width - bar_width - len("0:00:00") - len(left) * (len("≤0:00:00 left") + 1) - 4
        self.detail_width = max(12, room)
        detail = Column(no_wrap=True, overflow="ellipsis", max_width=self.detail_width)
        self._progress = Progress(
            TextColumn("[bold]{task.description}", table_column=name),
            BarColumn(bar_width=bar_width),
            TextColumn("{task.fields[detail]}", table_column=detail),
            TimeElapsedColumn(),
            *left,
            console=self.console,
            transient=True,
            refresh_per_second=4,
        )
        self._phase_task = self._progress.add_task("", total=1, visible=False, detail="", done0=0.0)
        self._command_task = self._progress.add_task(
            self.title,
            total=None if self.total is None else max(self.total, 1.0),
            detail="",
            done0=0.0,
            bound=self.bound,
        )
        self._progress.start()
        self._route_logs()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._restore_logs()

    def _route_logs(self) -> None:
        """Lightning's handlers hold the terminal as it was at import: send its lines above the bars."""
        self._handler = _AboveTheBars(self)
        for name in LIGHTNING_LOGGERS:
            logger = logging.getLogger(name)
            self._saved_handlers[name] = list(logger.handlers)
            for h in list(logger.handlers):
                if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
                    logger.removeHandler(h)
            logger.addHandler(self._handler)  # each has its own handler: no line is printed twice

    def _restore_logs(self) -> None:
        for name, handlers in self._saved_handlers.items():
            logger = logging.getLogger(name)
            if self._handler is not None:
                logger.removeHandler(self._handler)
            for h in handlers:
                if h not in logger.handlers:
                    logger.addHandler(h)
        self._saved_handlers.clear()

    @property
    def done(self) -> float:
        """The command's units done here so far: finished phases, and the current one's share."""
        p = self._phase
        return self.credited + (p.share * p.counts if p is not None else 0.0)

    @property
    def where(self) -> str:
        """Where the command is in its plan (the stages, outermost first)."""
        return " · ".join(self._stages[k] for k in sorted(self._stages))

    def _refresh_command(self) -> None:
        if self._progress is None:
            return
        done = self.done
        if self.total is None:  # rich draws a task of no total as a pulsing bar; update() cannot unset one
            for task in self._progress.tasks:
                if task.id == self._command_task:
                    task.total = None
        self._progress.update(
            self._command_task,
            total=None if self.total is None else max(self.total, done, 1e-9),
            completed=done,
            detail=self.where,
        )

    def result(self, *objects: Any, **kwargs: Any) -> None:
        """A result line: on stdout, or above the bars while they are drawn (both streams are the terminal
        then; another console's line would be written across them)."""
        if self._progress is not None:
            self.print(*objects, **kwargs)
        else:
            self.out.print(*objects, **kwargs)

    # --- Reporter -------------------------------------------------------------------------------------

    def epoch(self, phase: str, row: Mapping[str, float], epochs: int | None) -> None:
        """One whole line: fitted to the terminal's width in rich output, the full record elsewhere."""
        if self.console.mode == "rich" and self.console.is_terminal:
            self.print(
                fitted_epoch_line(phase, row, epochs, self.console.width), highlight=False, markup=False
            )
        else:
            super().epoch(phase, row, epochs)

    def start(
        self, phase: str, total: int | None, unit: str = EPOCH, done: int = 0, counts: float | None = None
    ) -> None:
        """As :meth:`Reporter.start`; ``counts``: the command's units the phase stands for (default: its
        own units still to do when they are the command's unit, else none). A phase of the command's unit
        with no total makes the command's total unknown too."""
        self.finish()
        if unit == self.unit:
            if total is None:
                self.total = None
            elif self.total is not None:
                self.total -= done  # done before this command: not its work
            counts = (total - done if total is not None else 0.0) if counts is None else counts
        self._phase = _Phase(
            unit, None if total is None else float(total), float(done), float(done), float(counts or 0.0)
        )
        if self._progress is not None:
            if total is None:
                detail = f"epoch {done + 1}" if unit == EPOCH else f"{done} {unit}s"
            else:
                detail = f"{done}/{total} {unit}s" if unit != EPOCH else f"epoch {done + 1}/{total}"
            self._progress.reset(
                self._phase_task,
                total=1 if total is None else max(total, 1),
                completed=0 if total is None else done,
                description=phase,
                visible=True,
                detail=detail,
                done0=0.0 if total is None else float(done),
                open=total is None,
            )
        self._refresh_command()

    def update(self, completed: float, detail: str = "") -> None:
        if self._phase is None:
            return
        self._phase.completed = float(completed)
        if self._progress is not None:
            self._progress.update(self._phase_task, completed=completed, detail=detail)
        self._refresh_command()

    def converging(self, state: Converging) -> None:
        """The bar fills with the evaluations without a gain out of the patience (full: the fit stops)."""
        if self._phase is None:
            return
        self._phase.completed = float(state.epoch)
        if self._progress is not None:
            self._progress.update(
                self._phase_task,
                total=max(state.patience, 1),
                completed=state.wait,
                detail=state.detail(self.detail_width),
            )
        self._refresh_command()

    def stopped(self, phase: str, summary: Mapping[str, Any]) -> None:
        """One whole line: fitted to the terminal's width in rich output, the full line elsewhere."""
        self.print(fitted_line(stop_lines(phase, summary), self.console), highlight=False, markup=False)
        self.stops.append(phase)

    def finish(self) -> None:
        p, self._phase = self._phase, None
        if p is None:
            return
        self.credited += p.share * p.counts
        if p.unit == self.unit and p.total is not None and self.total is not None:
            self.total -= max(p.total - p.completed, 0.0)  # a fit that stopped early will not train the rest
        if self._progress is not None:
            self._progress.update(self._phase_task, visible=False)
        self._refresh_command()

    def skip_epochs(self, n: int | None) -> None:
        if self.unit == EPOCH and self.total is not None:
            self.total = None if n is None else self.total - n  # a converging fit's epochs were never planned
            self._refresh_command()

    def stage(self, text: str, level: int = 0) -> None:
        self._stages = {k: v for k, v in self._stages.items() if k < level}
        self._stages[level] = text
        self._refresh_command()

    def plan(self, total: float | None) -> None:
        """The command's plan became known: ``total`` units."""
        self.total = None if total is None else float(total)
        self._refresh_command()

    def set_done(self, done: float) -> None:
        """The command has done ``done`` units in all (phases before the current one)."""
        self.credited = float(done)
        self._refresh_command()
