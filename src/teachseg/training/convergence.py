"""When a training run ends: after ``train.epochs`` epochs, or once validation Dice has stopped improving.

``train.stop: converge`` (the default) is Lightning's :class:`~lightning.pytorch.callbacks.EarlyStopping` on
validation Dice, with two choices of teachseg's:

* **Patience in optimiser steps, evaluated at epoch boundaries.** Validation runs every
  ``ceil(eval_every_steps / steps_per_epoch)`` epochs, so ``patience`` evaluations are about the same number of
  optimiser steps at every label fraction (at 1/16 of BUSI an epoch is 3 batches, with every mask 53), and
  every checkpoint is taken at the end of an epoch: Lightning cannot resume a plain DataLoader in the middle
  of one, and at an epoch boundary a resumed run repeats the uninterrupted one batch for batch.
* **A cap that never shapes the schedule.** ``max_steps`` is rounded down to whole evaluation intervals (at
  least one); the learning rate follows the plateau rule of
  :class:`~teachseg.training.module.SegmentationModule`, which does not depend on the cap.

The early-stopping state (best score, evaluations without a gain) is saved in ``last.ckpt`` with the rest of
the callbacks' state, so a killed run resumed with ``--resume`` stops where the uninterrupted one stops; a run
that had already stopped when it was killed does not train again.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason

if TYPE_CHECKING:
    import lightning as L

    from teachseg.config import Config


class ConvergenceStop(EarlyStopping):
    """Stops when validation Dice has not gained ``min_delta`` for ``patience`` evaluations, or at the cap.

    Args:
        patience: evaluations without a gain before training stops.
        min_delta: the validation Dice gain that counts as one.
        eval_every_steps: optimiser steps between evaluations, rounded up to whole epochs.
        max_steps: cap on the optimiser steps, rounded down to whole evaluation intervals (at least one).
    """

    def __init__(self, patience: int, min_delta: float, eval_every_steps: int, max_steps: int):
        super().__init__(
            monitor="val_dice",
            mode="max",
            patience=patience,
            min_delta=min_delta,
            # validation does not run every epoch, so the check follows validation, never an epoch's end
            check_on_train_epoch_end=False,
            verbose=False,
        )
        self.eval_every_steps = eval_every_steps
        self.max_steps = max_steps
        self.steps_per_epoch = 0
        self.eval_every_epochs = 1
        self.max_epochs = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Set the validation cadence and the epoch cap from this run's steps per epoch."""
        super().on_train_start(trainer, pl_module)
        self.steps_per_epoch = max(int(trainer.num_training_batches), 1)
        self.eval_every_epochs, self.max_epochs = cadence(
            self.steps_per_epoch, self.eval_every_steps, self.max_steps
        )
        trainer.check_val_every_n_epoch = self.eval_every_epochs
        trainer.fit_loop.max_epochs = self.max_epochs
        if self.stopped_by == "patience":  # resumed after it had stopped: nothing left to train
            trainer.should_stop = True

    @property
    def stopped_by(self) -> str:
        """``patience`` (validation Dice stopped improving), ``not finite`` (it became NaN) or ``max_steps``."""
        if self.stopping_reason == EarlyStoppingReason.PATIENCE_EXHAUSTED or self.wait_count >= self.patience:
            return "patience"
        if self.stopping_reason == EarlyStoppingReason.NON_FINITE_METRIC:
            return "not finite"
        return "max_steps"

    def record(self) -> dict[str, Any]:
        """What ``summary.json`` keeps under ``stop``: the rule, its settings and why the run ended."""
        return {
            "rule": "converge",
            "stopped_by": self.stopped_by,
            "patience": self.patience,
            "min_delta": abs(float(self.min_delta)),
            "eval_every_steps": self.eval_every_steps,
            "eval_every_epochs": self.eval_every_epochs,
            "steps_per_epoch": self.steps_per_epoch,
            "max_steps": self.max_steps,
        }


def cadence(steps_per_epoch: int, eval_every_steps: int, max_steps: int) -> tuple[int, int]:
    """(epochs between evaluations, epoch cap): the smallest whole number of epochs holding
    ``eval_every_steps`` steps, and the most whole evaluation intervals within ``max_steps`` (at least one).

    Example:
        >>> cadence(3, 100, 2000)  # 34 epochs of 3 steps per evaluation, 19 evaluations at most
        (34, 646)
        >>> cadence(53, 100, 2000)
        (2, 36)
    """
    per_eval = max(1, math.ceil(eval_every_steps / max(steps_per_epoch, 1)))
    evaluations = max(1, max_steps // (per_eval * max(steps_per_epoch, 1)))
    return per_eval, per_eval * evaluations


def stopper(cfg: Config) -> ConvergenceStop | None:
    """The early-stopping callback of ``cfg.train`` (None with ``train.stop: epochs``)."""
    t = cfg.train
    if t.stop != "converge":
        return None
    c = t.converge
    return ConvergenceStop(c.patience, c.min_delta, c.eval_every_steps, c.max_steps)


def epochs_record(epochs: int) -> dict[str, Any]:
    """``summary.json``'s ``stop`` for a run of fixed length (``train.stop: epochs``)."""
    return {"rule": "epochs", "stopped_by": "epochs", "epochs": epochs}
