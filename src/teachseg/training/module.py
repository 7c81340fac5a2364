"""A thin LightningModule: the model is passed in; loss, optimiser and metrics are all it knows.

Two rules keep a loss weight of 0 meaning "this image does nothing" (the ``selftrain.pseudo_weight: 0``
control relies on it):

* an image whose loss weight is 0 (a pseudo-labelled image under ``pseudo_weight`` 0, or one whose pixel
  weights are all 0) is taken out of the batch before the forward pass, so it adds no batch-norm statistics
  and does not change the other images' normalisation;
* a batch left with no image takes no optimiser step: AdamW would still move every weight through its
  momentum and weight decay on a zero gradient. Under DDP the step is skipped only when no rank has an image
  to train on (the ranks step together); a rank without one contributes a zero gradient.

Under DDP each rank's forward passes update its own batch-norm statistics, but DDP copies rank 0's buffers to
every rank at the start of each forward pass, validation's included: the ranks validate, checkpoint and end
with rank 0's statistics, the ones rank 0 exports.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric

from teachseg.losses import BCEDiceLoss
from teachseg.training.evaluate import score_native


class SegmentationModule(L.LightningModule):
    """Trains a binary segmentation model; validation Dice is the mean per-image Dice at native resolution.

    Validation scores each image with :func:`teachseg.training.evaluate.score_native` (probabilities resized
    to the mask's size), the path ``summary.json`` and ``val_per_image.csv`` use, so the epoch that is
    selected reports the same Dice as the run's summary.

    Args:
        model: an smp model (or any module mapping (B, 3, H, W) to (B, 1, H, W) logits).
        loss: the training loss; called as ``loss(logits, target, weight, is_pseudo)`` in training (the batch's
            per-image pseudo-label flags, or None) and ``loss(logits, target)`` in validation.
        lr, weight_decay: AdamW settings.
        epochs: total epochs (for the cosine schedule).
        scheduler: ``cosine`` (over ``epochs``), ``plateau`` (the learning rate times ``plateau_factor`` after
            ``plateau_patience`` validations without a validation Dice gain above ``plateau_threshold``, down to
            1% of ``lr``; never tied to a run length, so early stopping cannot cut it short) or ``none``.
        threshold: probability threshold of the metrics.
        channels_last: run convolutions in NHWC memory format (faster on CPU and tensor cores).
    """

    def __init__(
        self,
        model: nn.Module,
        loss: BCEDiceLoss,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        epochs: int = 30,
        scheduler: str = "cosine",
        threshold: float = 0.5,
        channels_last: bool = True,
        plateau_patience: int = 3,
        plateau_factor: float = 0.5,
        plateau_threshold: float = 0.0,
    ):
        super().__init__()
        self.model = model
        self.loss = loss
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.scheduler_name = scheduler
        self.threshold = threshold
        self.channels_last = channels_last
        self.plateau_patience = plateau_patience
        self.plateau_factor = plateau_factor
        self.plateau_threshold = plateau_threshold
        # the plateau schedule is stepped here, at every validation, not by Lightning (whose step-interval
        # plateau schedulers count batches within an epoch); its state travels in the checkpoints
        self._plateau: torch.optim.lr_scheduler.ReduceLROnPlateau | None = None
        self._plateau_state: dict[str, Any] | None = None
        self._epoch_lr: float | None = None
        self.train_loss_mean = MeanMetric()
        self.val_loss_mean = MeanMetric()
        self.val_dice_mean = MeanMetric()
        self.val_jaccard_mean = MeanMetric()
        #: One row per validation: epoch, step (optimiser steps so far), train_loss, val_loss, val_dice,
        #: val_jaccard, lr.
        self.history: list[dict[str, float]] = []
        #: Set before each training batch: no rank has an image with loss weight, so no optimiser step.
        self.skip_optimizer_step = False
        if channels_last:
            self.model.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x)

    def on_train_epoch_start(self) -> None:
        self.train_loss_mean.reset()
        optimizers = self.trainer.optimizers
        # the rate this epoch trains with (an epoch-interval schedule steps before the epoch's validation)
        self._epoch_lr = float(optimizers[0].param_groups[0]["lr"]) if optimizers else None

    def weighted_images(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Which images of a training batch carry loss weight, (B,) bool: not pseudo-labelled under
        ``pseudo_weight`` 0, and with at least one pixel of non-zero weight."""
        keep = batch["weight"].flatten(1).sum(1) > 0
        is_pseudo = batch.get("is_pseudo")
        if is_pseudo is not None and getattr(self.loss, "pseudo_weight", 1.0) == 0:
            keep = keep & ~is_pseudo.to(device=keep.device, dtype=torch.bool).reshape(-1)
        return keep

    def batch_has_weight(self, batch: Any) -> bool:
        """Whether this rank's training batch has an image to learn from."""
        return bool(self.weighted_images(batch).any())

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # one decision for all ranks: DDP's ranks must take their optimiser steps together
        has_weight = self.trainer.strategy.reduce_boolean_decision(self.batch_has_weight(batch), all=False)
        self.skip_optimizer_step = not has_weight

    def optimizer_step(
        self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure: Any = None
    ) -> None:
        if self.skip_optimizer_step:
            if optimizer_closure is not None:
                optimizer_closure()  # training_step and a zero backward (DDP's ranks all reduce gradients)
            return
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)

    def zero_loss(self) -> torch.Tensor:
        """0, with a (zero) gradient for every trainable parameter and no forward pass: what a rank without an
        image to learn from gives back, so that DDP's gradient reduction still meets every parameter."""
        return torch.stack([p.sum() * 0.0 for p in self.model.parameters() if p.requires_grad]).sum()

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        keep = self.weighted_images(batch)
        if not bool(keep.any()):
            return self.zero_loss()
        if not bool(keep.all()):
            batch = {k: v[keep] if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
        logits = self(batch["image"])
        # is_pseudo lets the loss weigh the pseudo-labelled images as a whole (selftrain.pseudo_weight).
        loss = self.loss(logits, batch["target"], batch["weight"], batch.get("is_pseudo"))
        n = batch["image"].shape[0]
        self.train_loss_mean.update(loss.detach(), weight=n)
        self.log("train_loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=n)
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        logits = self(batch["image"]).float()
        probs = torch.sigmoid(logits[:, 0])
        for logit, prob, mask in zip(logits, probs, batch["mask"], strict=True):
            native = F.interpolate(logit[None], size=tuple(mask.shape), mode="bilinear", align_corners=False)
            target = mask.to(native.device, torch.float32)[None, None]
            self.val_loss_mean.update(self.loss(native, target))
            # Scores through the one scoring path that summary.json and val_per_image.csv use too.
            _, scores = score_native(prob, mask, self.threshold)
            self.val_dice_mean.update(torch.tensor(scores.dice, device=self.device))
            self.val_jaccard_mean.update(torch.tensor(scores.jaccard, device=self.device))

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            for m in (self.val_loss_mean, self.val_dice_mean, self.val_jaccard_mean):
                m.reset()
            return
        row = {
            "epoch": self.current_epoch + 1,
            "step": int(self.global_step),
            "train_loss": float(self.train_loss_mean.compute())
            if self.train_loss_mean.update_count
            else float("nan"),
            "val_loss": float(self.val_loss_mean.compute()),
            "val_dice": float(self.val_dice_mean.compute()),
            "val_jaccard": float(self.val_jaccard_mean.compute()),
        }
        for m in (self.val_loss_mean, self.val_dice_mean, self.val_jaccard_mean):
            m.reset()
        if self._epoch_lr is not None:
            row["lr"] = self._epoch_lr  # the rate of the last epoch before this validation
        if self._plateau is not None:
            self._plateau.step(row["val_dice"])
        self.history = [r for r in self.history if r["epoch"] < row["epoch"]] + [row]
        self.log("val_dice", row["val_dice"], prog_bar=True, sync_dist=False)
        self.log("val_jaccard", row["val_jaccard"], sync_dist=False)
        self.log("val_loss", row["val_loss"], sync_dist=False)
        self.log("train_loss_epoch", row["train_loss"], sync_dist=False)

    def configure_optimizers(self) -> Any:
        opt = torch.optim.AdamW(self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        if self.scheduler_name == "none":
            return opt
        if self.scheduler_name == "plateau":
            self._plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
                opt,
                mode="max",
                factor=self.plateau_factor,
                patience=self.plateau_patience - 1,  # torch decays after patience + 1 bad validations
                threshold=self.plateau_threshold,
                threshold_mode="abs",
                min_lr=self.lr * 0.01,
                eps=0.0,  # torch skips decays below 1e-8 by default, which would freeze a small rate
            )
            if self._plateau_state is not None:
                self._plateau.load_state_dict(self._plateau_state)
            return opt
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, T_max=max(self.epochs, 1), eta_min=self.lr * 0.01
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["teachseg_history"] = list(self.history)
        if self._plateau is not None:
            checkpoint["teachseg_plateau"] = self._plateau.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.history = list(checkpoint.get("teachseg_history", []))
        # Lightning restores a checkpoint before it calls configure_optimizers, which loads this state
        self._plateau_state = checkpoint.get("teachseg_plateau")
        if self._plateau is not None and self._plateau_state is not None:
            self._plateau.load_state_dict(self._plateau_state)
