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

A fit that converges (``train.stop: converge``) has no known end: its phase starts with no total, reports
where its stopping rule stands (:class:`Converging`) instead of a share of a total, and says once why and where
it stopped (:meth:`Reporter.stopped`). Its epochs have no plan either, so a command that may run one plans
None: its total is unknown, and nothing is estimated from it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from teachseg.config import Config

#: The unit of a training phase; such phases add up to the command's progress.
EPOCH = "epoch"


def known_epochs(cfg: Config, epochs: int | None = None) -> int | None:
    """The epochs one fit of ``cfg`` trains (``epochs``, else ``train.epochs``) when that is known in advance
    (``train.stop: epochs``); None for a fit that converges, which ends when validation Dice stops improving.

    >>> from teachseg.config import build_config
    >>> known_epochs(build_config({"train": {"stop": "epochs", "epochs": 5}})), known_epochs(build_config({}))
    (5, None)
    """
    return (epochs or cfg.train.epochs) if cfg.train.stop == "epochs" else None


def epoch_head(row: Mapping[str, float], epochs: int | None, *, align: bool = False) -> str:
    """Which epoch a record is: ``epoch 2/5`` of a fit of known length, ``epoch 12  step 72`` of a converging
    one (the step where ``row`` has it); ``align`` pads the numbers as log files do."""
    epoch = int(row["epoch"])
    if epochs is not None:
        return f"epoch {epoch:>3}/{epochs}" if align else f"epoch {epoch}/{epochs}"
    head = f"epoch {epoch:>3}" if align else f"epoch {epoch}"
    if "step" in row:
        head += f"  step {int(row['step']):>4}" if align else f"  step {int(row['step'])}"
    return head


def epoch_line(row: Mapping[str, float], epochs: int | None) -> str:
    """The full record of a finished epoch, as log files show it (the names of ``metrics.csv``'s columns);
    ``epochs`` None: a converging fit's, with its step and no total.

    >>> row = {"epoch": 2, "step": 6, "train_loss": 1.2, "val_loss": 1.3, "val_dice": 0.4, "val_jaccard": 0.25}
    >>> epoch_line(row, 3)
    'epoch   2/3  train_loss 1.2000  val_loss 1.3000  val_dice 0.4000  val_jaccard 0.2500'
    >>> epoch_line(row, None)
    'epoch   2  step    6  train_loss 1.2000  val_loss 1.3000  val_dice 0.4000  val_jaccard 0.2500'
    """
    return (
        f"{epoch_head(row, epochs, align=True)}  train_loss {row['train_loss']:.4f}  "
        f"val_loss {row['val_loss']:.4f}  val_dice {row['val_dice']:.4f}  val_jaccard {row['val_jaccard']:.4f}"
    )


@dataclass(frozen=True)
class Converging:
    """Where a converging fit stands, as its stopping rule (:mod:`teachseg.training.convergence`) has it.

    Args:
        epoch: the epoch being trained or validated, 1-based.
        step: optimiser steps so far.
        wait: evaluations since the last gain of validation Dice.
        patience: evaluations without a gain that stop the fit.
        best: the best validation Dice that counted as a gain (None before the first evaluation).
        best_epoch: the epoch (1-based) of ``best``.
        validating: the fit is validating ``epoch``.
    """

    epoch: int
    step: int
    wait: int
    patience: int
    best: float | None = None
    best_epoch: int | None = None
    validating: bool = False

    def details(self) -> list[str]:
        """What the phase's bar says, longest first (a display takes the first that fits):
        ``epoch 12 · step 72  best 0.6123 @ epoch 9  3/10 without gain`` down to ``epoch 12  3/10``."""
        where = f"epoch {self.epoch} · " + ("validation" if self.validating else f"step {self.step}")
        wait = f"{self.wait}/{self.patience}"
        if self.best is None or self.best_epoch is None:
            return [
                f"{where}  {wait} without gain",
                f"epoch {self.epoch}  {wait} no gain",
                f"epoch {self.epoch}",
            ]
        best = f"best {self.best:.4f}"  # as the epoch lines above the bar
        return [
            f"{where}  {best} @ epoch {self.best_epoch}  {wait} without gain",
            f"{where}  {best} @ {self.best_epoch}  {wait} no gain",
            f"epoch {self.epoch}  {best} @ {self.best_epoch}  {wait} no gain",
            f"epoch {self.epoch}  {best}  {wait}",
        ]

    def detail(self, width: int | None = None) -> str:
        """The longest of :meth:`details` of at most ``width`` characters (the shortest when none fits)."""
        forms = self.details()
        return next((f for f in forms if width is None or len(f) <= width), forms[-1])


def _why(stop: Mapping[str, Any]) -> tuple[str, str]:
    """Why a fit stopped, from ``summary.json``'s ``stop``: in full, and in a few words."""
    stopped_by = str(stop.get("stopped_by", "?"))
    if stopped_by == "patience":
        gain, patience = stop.get("min_delta"), stop.get("patience", "?")
        of = f" of {gain:g}" if isinstance(gain, int | float) and gain > 0 else ""
        return f"no gain{of} in {patience} evaluations", f"no gain in {patience}"
    if stopped_by == "max_steps":
        cap = stop.get("max_steps", "?")
        return f"the step cap was reached (train.converge.max_steps {cap})", f"step cap {cap}"
    if stopped_by == "not finite":
        return "validation Dice was not a number", "Dice not a number"
    if stopped_by == "epochs":
        return "train.epochs were done", "train.epochs"
    return stopped_by, stopped_by


def stop_lines(phase: str, summary: Mapping[str, Any]) -> list[str]:
    """Why and where a fit stopped, from its summary (``summary.json``'s data: ``stop``, ``epochs``,
    ``steps``, ``best_epoch``, ``best_step``, ``val_dice``): the full line first, then shorter ones for a
    narrow terminal (the last without the phase).

    >>> stop = {"rule": "converge", "stopped_by": "patience", "patience": 10, "min_delta": 0.001}
    >>> s = dict(stop=stop, epochs=40, steps=240, best_epoch=30, best_step=180, val_dice=0.6412)
    >>> print("\\n".join(stop_lines("gen0 Teacher", s)))
    gen0 Teacher stopped at epoch 40 (step 240): no gain of 0.001 in 10 evaluations; best epoch 30 (step 180), val Dice 0.6412
    gen0 Teacher stopped at epoch 40: no gain of 0.001 in 10 evaluations; best epoch 30, val Dice 0.6412
    gen0 Teacher stopped at epoch 40 (no gain in 10); best epoch 30, Dice 0.6412
    stopped at epoch 40 (no gain in 10); best epoch 30, Dice 0.6412
    """
    why, short = _why(summary.get("stop") or {})
    epoch, best = summary.get("epochs"), summary.get("best_epoch")

    def step(key: str) -> str:
        return f" (step {summary[key]})" if summary.get(key) is not None else ""

    dice = summary.get("val_dice")
    dice_text = f"{dice:.4f}" if isinstance(dice, float) and math.isfinite(dice) else "n/a"
    brief = f"stopped at epoch {epoch} ({short}); best epoch {best}, Dice {dice_text}"
    return [
        f"{phase} stopped at epoch {epoch}{step('steps')}: {why}; "
        f"best epoch {best}{step('best_step')}, val Dice {dice_text}",
        f"{phase} stopped at epoch {epoch}: {why}; best epoch {best}, val Dice {dice_text}",
        f"{phase} {brief}",
        brief,
    ]


def stop_line(phase: str, summary: Mapping[str, Any]) -> str:
    """The full line of :func:`stop_lines`, as log files show it."""
    return stop_lines(phase, summary)[0]


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

    def epoch(self, phase: str, row: Mapping[str, float], epochs: int | None) -> None:
        """Epoch ``row["epoch"]`` (1-based) of ``epochs`` in ``phase`` finished with the scores in ``row``
        (``epochs`` None: a converging fit, of no known length)."""
        self.print(epoch_line(row, epochs), highlight=False)

    def start(self, phase: str, total: int | None, unit: str = EPOCH, done: int = 0) -> None:
        """``phase`` begins: ``total`` ``unit``s, of which ``done`` were done before (a resumed fit); ``total``
        None: a converging fit, which reports :meth:`converging` instead of :meth:`update`."""

    def update(self, completed: float, detail: str = "") -> None:
        """The current phase has done ``completed`` of its units (fractions within an epoch); ``detail``
        says where, e.g. ``epoch 2/5 · 3/12``."""

    def converging(self, state: Converging) -> None:
        """The current phase, a converging fit, stands at ``state``."""

    def stopped(self, phase: str, summary: Mapping[str, Any]) -> None:
        """The converging fit ``phase`` stopped: one line saying why and where (:func:`stop_line`)."""
        self.print(stop_line(phase, summary), highlight=False, markup=False)

    def finish(self) -> None:
        """The current phase is over."""

    def skip_epochs(self, n: int | None) -> None:
        """``n`` epochs of the command's plan will not be trained here (reused, resumed, or not needed);
        None: a converging fit's, which the plan could not count."""

    def stage(self, text: str, level: int = 0) -> None:
        """Where the command is in its plan (``run 2/6``, ``gen 1 of at most 3``); a stage of
        ``level`` replaces that level's text and clears the deeper ones."""


def as_reporter(console: Any) -> Reporter:
    """``console`` itself when it is a :class:`Reporter`, else a plain one printing through it."""
    return console if isinstance(console, Reporter) else Reporter(console)
