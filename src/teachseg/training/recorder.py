"""What a fit records as it goes: ``metrics.csv`` after every validation, its throughput, and its epochs and
batches for the person running it (:class:`EpochRecorder`, a Lightning callback used by
:func:`teachseg.training.fit.fit_select_export`).
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from teachseg.io import write_text
from teachseg.training import convergence
from teachseg.training.progress import EPOCH, Converging, as_reporter

METRIC_COLUMNS = ["epoch", "step", "train_loss", "val_loss", "val_dice", "val_jaccard"]
#: the columns written as whole numbers
_COUNTS = ("epoch", "step")


class EpochRecorder(Callback):
    """Writes ``metrics.csv`` after every validation, measures training throughput, and reports the fit's
    epochs and batches to ``console`` (a :class:`~teachseg.training.progress.Reporter`, or anything with
    rich's ``print``) as the phase ``phase``.

    With ``stopper`` (``train.stop: converge``) the fit has no known length: its epoch cap is a guard derived
    from ``max_steps``, never shown; the reporter hears where the stopping rule stands instead
    (:class:`~teachseg.training.progress.Converging`, read from ``stopper``'s own state)."""

    def __init__(
        self,
        path: Path,
        n_train: int,
        console: Any = None,
        phase: str = "training",
        stopper: convergence.ConvergenceStop | None = None,
    ):
        self.path = path
        self.n_train = n_train
        self.reporter = as_reporter(console)
        self.phase = phase
        self.stopper = stopper
        self.train_seconds = 0.0
        self.images_seen = 0
        self._t0: float | None = None

    def _epochs(self, trainer: L.Trainer) -> int | None:
        """The fit's length as the display shows it: None while it converges."""
        return None if self.stopper is not None else int(trainer.max_epochs or 0)

    def _report_convergence(self, trainer: L.Trainer, pl_module: L.LightningModule, validating: bool) -> None:
        """Where the stopping rule stands (it has seen every validation before the current epoch's)."""
        assert self.stopper is not None
        score = float(self.stopper.best_score)
        best = score if math.isfinite(score) else None
        # the epoch of the rule's best: the first validation that scored it (later equal scores are no gain)
        best_epoch = next(
            (
                int(row["epoch"])
                for row in getattr(pl_module, "history", [])
                if best is not None and abs(float(row["val_dice"]) - best) <= 1e-6
            ),
            None,
        )
        self.reporter.converging(
            Converging(
                epoch=trainer.current_epoch + 1,
                step=int(trainer.global_step),
                wait=int(self.stopper.wait_count),
                patience=int(self.stopper.patience),
                best=best if best_epoch is not None else None,
                best_epoch=best_epoch,
                validating=validating,
            )
        )

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:  # a resumed fit starts at the epoch its checkpoint reached
            self.reporter.start(self.phase, self._epochs(trainer), EPOCH, done=trainer.current_epoch)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t0 = time.perf_counter()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not trainer.is_global_zero:
            return
        if self.stopper is not None:
            self._report_convergence(trainer, pl_module, validating=False)
            return
        epoch, n = trainer.current_epoch, trainer.num_training_batches
        share = (batch_idx + 1) / n if 0 < n < float("inf") else 0.0
        where = f"{batch_idx + 1}/{n}" if 0 < n < float("inf") else f"{batch_idx + 1}"
        self.reporter.update(epoch + min(share, 1.0), f"epoch {epoch + 1}/{trainer.max_epochs} · {where}")

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._t0 is not None and not trainer.sanity_checking:
            self.train_seconds += time.perf_counter() - self._t0
            self.images_seen += self.n_train
            self._t0 = None
        if trainer.is_global_zero and not trainer.sanity_checking:
            epoch = trainer.current_epoch
            if self.stopper is not None:
                self._report_convergence(trainer, pl_module, validating=True)
            else:
                self.reporter.update(epoch + 1, f"epoch {epoch + 1}/{trainer.max_epochs} · validation")

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        history = getattr(pl_module, "history", [])
        write_metrics_csv(self.path, history)
        if history:
            self.reporter.epoch(self.phase, history[-1], self._epochs(trainer))

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self.reporter.finish()


def evaluation_phase(phase: str) -> str:
    """The name of a fit's evaluation phase: ``gen1 Student`` -> ``gen1 evaluation``."""
    head, _, _ = phase.rpartition(" ")
    return f"{head} evaluation" if head else "evaluation"


def write_metrics_csv(path: Path, history: Sequence[dict[str, float]]) -> None:
    """Write ``metrics.csv`` (one row per validation, :data:`METRIC_COLUMNS`) atomically."""
    # methods may add their own per-epoch statistics (the online methods' unl_loss, unl_confident)
    extra = [k for row in history for k in row if k not in METRIC_COLUMNS]
    columns = METRIC_COLUMNS + list(dict.fromkeys(extra))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", restval="nan")
    writer.writeheader()
    for row in history:
        writer.writerow({k: _cell(k, row[k]) for k in columns if k in row})
    write_text(path, buf.getvalue())


def _cell(key: str, value: Any) -> Any:
    if key in _COUNTS:
        return value
    # a learning rate can be far below 1e-6, and six decimals would write it as 0
    return f"{value:.6g}" if key == "lr" else f"{value:.6f}"
