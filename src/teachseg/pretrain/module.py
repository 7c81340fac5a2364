"""A thin LightningModule for pretraining: the objective (and the encoder inside it) is passed in; the optimiser,
its schedule and what a checkpoint must carry are all it knows."""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import torch

from teachseg.pretrain.objectives import Objective


class PretrainModule(L.LightningModule):
    """Minimises ``objective`` over batches of two views with AdamW and a per-step cosine schedule.

    Args:
        objective: the objective (its ``encoder`` is what pretraining exports).
        lr, weight_decay: AdamW settings.
        total_steps: optimiser steps of the whole pretraining (the schedule's length).
        channels_last: run convolutions in NHWC memory format (``train.channels_last``).
    """

    def __init__(
        self,
        objective: Objective,
        *,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        total_steps: int = 1,
        channels_last: bool = True,
    ):
        super().__init__()
        self.objective = objective
        self.lr = lr
        self.weight_decay = weight_decay
        self.total_steps = max(int(total_steps), 1)
        self.channels_last = channels_last
        #: one row per finished epoch: epoch (1-based), loss (mean over its steps), seconds (its wall time)
        self.history: list[dict[str, float]] = []
        #: wall seconds of the finished epochs, also those of earlier (killed and resumed) sessions
        self.seconds = 0.0
        self._losses: list[torch.Tensor] = []
        self._t0: float | None = None
        if channels_last:
            self.objective.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    @property
    def encoder(self) -> torch.nn.Module:
        """The encoder being pretrained."""
        return self.objective.encoder

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def on_train_epoch_start(self) -> None:
        self._losses = []
        self._t0 = time.perf_counter()

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        a, b = batch
        self.objective.before_step(self.global_step)
        loss = self.objective(self._layout(a), self._layout(b))
        self._losses.append(loss.detach())
        self.log("loss", loss, prog_bar=True, on_step=True, on_epoch=False, batch_size=a.shape[0])
        return loss

    def on_train_epoch_end(self) -> None:
        seconds = time.perf_counter() - self._t0 if self._t0 is not None else 0.0
        self.seconds += seconds
        mean = float(torch.stack(self._losses).mean()) if self._losses else float("nan")
        self.history.append({"epoch": self.current_epoch + 1, "loss": mean, "seconds": seconds})

    def configure_optimizers(self) -> Any:
        params = [p for p in self.objective.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, T_max=self.total_steps, eta_min=self.lr * 0.01
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["teachseg_pretrain"] = {
            "history": [dict(r) for r in self.history],
            "seconds": self.seconds,
            "extra_state": self.objective.extra_state(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("teachseg_pretrain", {})
        self.history = [dict(r) for r in saved.get("history", [])]
        self.seconds = float(saved.get("seconds", 0.0))
        self.objective.load_extra_state(saved.get("extra_state", {}))
