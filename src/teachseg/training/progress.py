"""How training tells the person running it where it is: whole lines, and how far each phase has got.

Training code (the Lightning callback, the self-training loop, experiments) reports to a :class:`Reporter`.
This base class prints the lines through any object with rich's ``print`` (a :class:`rich.console.Console`,
or None for silence) and draws nothing, so library callers and log files get plain whole lines. The CLI's
live display (:mod:`teachseg.cli._display`) subclasses it to draw a bar for the current phase and one for
the whole command.

A phase is one named step of the command, named after its run folder: ``gen0 Teacher``, ``gen1
pseudo-labels``, ``gen1 Student``, ``gen1 evaluation``. A fit's phase counts epochs; these add up to the
command's progress, whose total the caller plans (the epochs of every fit it may run, see
:func:`teachseg.selftrain.methods.planned_epochs`). Epochs the plan holds that will not be trained here (a
resumed or reused fit, generations the loop does not need) are given back with :meth:`Reporter.skip_epochs`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The unit of a training phase; such phases add up to the command's progress.
EPOCH = "epoch"


def epoch_line(row: Mapping[str, float], epochs: int) -> str:
    """The full record of a finished epoch, as log files show it (the names of ``metrics.csv``'s columns).

    >>> epoch_line({"epoch": 2, "train_loss": 1.2, "val_loss": 1.3, "val_dice": 0.4, "val_jaccard": 0.25}, 3)
    'epoch   2/3  train_loss 1.2000  val_loss 1.3000  val_dice 0.4000  val_jaccard 0.2500'
    """
    return (
        f"epoch {int(row['epoch']):>3}/{epochs}  train_loss {row['train_loss']:.4f}  "
        f"val_loss {row['val_loss']:.4f}  val_dice {row['val_dice']:.4f}  val_jaccard {row['val_jaccard']:.4f}"
    )


class Reporter:
    """What a training command tells its user; prints whole lines through ``console``, draws no bar.

    Args:
        console: anything with rich's ``print`` (None: report nothing).
    """

    def __init__(self, console: Any = None) -> None:
        self.console = console

    def print(self, *objects: Any, **kwargs: Any) -> None:
        """A whole line (a message, a decision)."""
        if self.console is not None:
            self.console.print(*objects, **kwargs)

    def epoch(self, phase: str, row: Mapping[str, float], epochs: int) -> None:
        """Epoch ``row["epoch"]`` (1-based) of ``epochs`` in ``phase`` finished with the scores in ``row``."""
        self.print(epoch_line(row, epochs), highlight=False)

    def start(self, phase: str, total: int, unit: str = EPOCH, done: int = 0) -> None:
        """``phase`` begins: ``total`` ``unit``s, of which ``done`` were done before (a resumed fit)."""

    def update(self, completed: float, detail: str = "") -> None:
        """The current phase has done ``completed`` of its units (fractions within an epoch); ``detail``
        says where, e.g. ``epoch 2/5 · 3/12``."""

    def finish(self) -> None:
        """The current phase is over."""

    def skip_epochs(self, n: int) -> None:
        """``n`` epochs of the command's plan will not be trained here (reused, resumed, or not needed)."""

    def stage(self, text: str, level: int = 0) -> None:
        """Where the command is in its plan (``run 2/6``, ``gen 1 of at most 3``); a stage of
        ``level`` replaces that level's text and clears the deeper ones."""


def as_reporter(console: Any) -> Reporter:
    """``console`` itself when it is a :class:`Reporter`, else a plain one printing through it."""
    return console if isinstance(console, Reporter) else Reporter(console)
