"""Online semi-supervised training: Mean Teacher and FixMatch (with UniMatch's options) as one LightningModule.

Each training step sees a batch of labelled images and a batch of unlabelled ones (Lightning's
``CombinedLoader``), and the loss is ``L_labelled + w(t) * L_unlabelled`` with ``w`` ramped up over the first
epochs. Everything else (validation, scoring, optimiser, schedule, checkpoints, history) is the supervised
:class:`~teachseg.training.module.SegmentationModule`'s, so every method is scored by the same code.

* ``mean_teacher``: the student sees the strong view, the EMA teacher the weak one; mean squared difference
  of their probabilities.
* ``fixmatch``: the teacher (the EMA, or the model itself without gradient) predicts the weak view; its
  confident hard labels are the target of the strong view, CutMix-ed within the batch together with its
  targets. Options from UniMatch: ``feature_dropout`` (a second prediction of the weak view through dropped
  encoder features, trained on the same targets) and ``two_strong`` (two independently augmented strong views).

Statistics per epoch, in ``history``: ``unl_loss`` and ``unl_confident`` (the share of unlabelled pixels whose
teacher confidence passed the threshold; 1.0 for Mean Teacher, which uses every pixel).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric

from teachseg.data.strong import cutmix, cutmix_boxes
from teachseg.losses import BCEDiceLoss
from teachseg.selftrain.consistency import confident_targets, fixmatch_loss, mean_teacher_loss, sigmoid_rampup
from teachseg.selftrain.ema import make_ema
from teachseg.training.module import SegmentationModule

OnlineMethod = Literal["mean_teacher", "fixmatch"]


class OnlineSemiModule(SegmentationModule):
    """A :class:`SegmentationModule` that also learns from unlabelled images, online.

    Args:
        model, loss, **kwargs: as :class:`SegmentationModule`.
        method: ``mean_teacher`` or ``fixmatch``.
        unlabelled_weight: weight of the unlabelled loss once ramped up; 0 makes a supervised control of the
            same steps: the unlabelled views never reach a network (no gradient, no batch-norm statistics), so
            the run is a supervised run on the labelled stream's batches, step for step.
        rampup_epochs: epochs of the sigmoid ramp-up of that weight (0: full weight from the start).
        ema_decay: decay of the EMA teacher.
        confidence: FixMatch's confidence threshold, in (0.5, 1) (``threshold`` stays the metrics').
        teacher: FixMatch's teacher, ``ema`` or ``model`` (the network itself, as UniMatch does).
        evaluate: the network validated and exported, ``ema`` or ``model``.
        cutmix_p: probability that a strong view gets a CutMix box (FixMatch).
        feature_dropout: UniMatch's feature perturbation, dropout on the encoder features (0: off).
        two_strong: UniMatch's second strong view.
        seed: seed of the CutMix boxes (reproducible after a resume).
    """

    def __init__(
        self,
        model: nn.Module,
        loss: BCEDiceLoss,
        *,
        method: OnlineMethod = "fixmatch",
        unlabelled_weight: float = 1.0,
        rampup_epochs: float = 5.0,
        ema_decay: float = 0.99,
        confidence: float = 0.95,
        teacher: Literal["ema", "model"] = "model",
        evaluate: Literal["ema", "model"] = "model",
        cutmix_p: float = 0.5,
        feature_dropout: float = 0.0,
        two_strong: bool = False,
        seed: int = 0,
        **kwargs: Any,
    ):
        super().__init__(model, loss, **kwargs)
        if method not in ("mean_teacher", "fixmatch"):
            raise ValueError(f"unknown online method {method!r}; use mean_teacher or fixmatch")
        if method == "fixmatch" and not 0.5 < confidence < 1.0:
            raise ValueError(f"fixmatch confidence threshold must be in (0.5, 1), got {confidence}")
        self.method = method
        self.unlabelled_weight = unlabelled_weight
        self.rampup_epochs = rampup_epochs
        self.conf_threshold = confidence
        self.teacher_kind = "ema" if method == "mean_teacher" else teacher
        self.evaluate = evaluate
        self.cutmix_p = cutmix_p
        self.feature_dropout = feature_dropout
        self.two_strong = two_strong
        self.seed = seed
        # The EMA is a submodule: its weights and update count are in every checkpoint, so a resume continues
        # the same average. It is built whenever it teaches or is evaluated.
        self.ema = make_ema(model, ema_decay) if "ema" in (self.teacher_kind, evaluate) else None
        self.unl_loss_mean = MeanMetric()
        self.unl_conf_mean = MeanMetric()

    # --- which network does what ---------------------------------------------------------------------

    @property
    def export_prefix(self) -> str:
        """State-dict prefix of the network validated and exported (``model.`` or ``ema.module.``)."""
        return "ema.module." if self.evaluate == "ema" else "model."

    def _as_input(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training and self.evaluate == "ema" and self.ema is not None:
            return self.ema.module(self._as_input(x))
        return self.model(self._as_input(x))

    @torch.no_grad()
    def _teacher(self, x: torch.Tensor) -> torch.Tensor:
        net = self.ema.module if self.teacher_kind == "ema" and self.ema is not None else self.model
        return net(self._as_input(x))

    def _step_seed(self, offset: int = 0) -> int:
        """The seed of this step's random draws (CutMix boxes and pairs, feature dropout): a function of the
        run's seed, the step and the DDP rank, so that a resumed run draws what an uninterrupted one drew and
        each rank draws its own boxes for its own shard of the batch (rank 0's are the single-device ones)."""
        return self.seed * 1_000_003 + int(self.global_step) + offset + 7_919 * int(self.global_rank)

    def _feature_dropout_logits(self, x: torch.Tensor) -> torch.Tensor:
        """UniMatch's FP view: the weak image through the encoder, channels dropped, then the decoder."""
        net: Any = self.model
        features = net.encoder(self._as_input(x))
        # seeded by the step, so a resumed run drops the same channels as an uninterrupted one
        with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
            torch.manual_seed(self._step_seed(17))
            features = [F.dropout2d(f, self.feature_dropout, training=True) for f in features]
        return net.segmentation_head(net.decoder(features))

    # --- training ------------------------------------------------------------------------------------

    def on_train_epoch_start(self) -> None:
        super().on_train_epoch_start()
        self.unl_loss_mean.reset()
        self.unl_conf_mean.reset()

    def _ramp(self) -> float:
        steps_per_epoch = max(int(getattr(self.trainer, "num_training_batches", 1) or 1), 1)
        epoch_float = self.global_step / steps_per_epoch
        return self.unlabelled_weight * sigmoid_rampup(epoch_float, self.rampup_epochs)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        lab, unl = batch["labelled"], batch["unlabelled"]
        sup = self.loss(self.model(self._as_input(lab["image"])), lab["target"], lab["weight"])
        n = lab["image"].shape[0]
        if self.unlabelled_weight == 0:
            # a control arm (the same labelled batches, steps, schedule and selection, no unlabelled signal):
            # the unlabelled views are not even predicted, so batch norm sees the labelled images only, as in
            # a supervised run of this length
            self.train_loss_mean.update(sup.detach(), weight=n)
            self.log("train_loss", sup, on_step=True, on_epoch=False, prog_bar=True, batch_size=n)
            return sup
        if self.method == "mean_teacher":
            unsup, confident = self._mean_teacher(unl)
        else:
            unsup, confident = self._fixmatch(unl)
        loss = sup + self._ramp() * unsup
        self.train_loss_mean.update(loss.detach(), weight=n)
        self.unl_loss_mean.update(unsup.detach())
        self.unl_conf_mean.update(confident)
        self.log("train_loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=n)
        return loss

    def _mean_teacher(self, unl: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        teacher = self._teacher(unl["weak"])
        student = self.model(self._as_input(unl["strong"]))
        return mean_teacher_loss(student, teacher), torch.tensor(1.0, device=student.device)

    def _fixmatch(self, unl: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        weak = unl["weak"]
        prob = torch.sigmoid(self._teacher(weak).float())
        hard, mask = confident_targets(prob, self.conf_threshold)
        generator = torch.Generator().manual_seed(self._step_seed())
        views = [unl["strong"]] + ([unl["strong2"]] if self.two_strong and "strong2" in unl else [])
        losses = []
        for view in views:
            b, _, h, w = view.shape
            boxes = cutmix_boxes(b, h, w, generator, p=self.cutmix_p)
            order = torch.randperm(b, generator=generator).to(view.device)
            mixed, (t, m) = cutmix(view, [hard, mask], boxes, order)
            losses.append(fixmatch_loss(self.loss, self.model(self._as_input(mixed)), t, m))
        unsup = torch.stack(losses).mean()
        if self.feature_dropout > 0:
            fp = fixmatch_loss(self.loss, self._feature_dropout_logits(weak), hard, mask)
            unsup = (unsup * len(views) + fp) / (len(views) + 1)
        return unsup, mask.mean()

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # every step has labelled images, whose loss weight is never 0: always an optimiser step
        self.skip_optimizer_step = False

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.ema is not None and not self.skip_optimizer_step:
            self.ema.update_parameters(self.model)

    def on_validation_epoch_end(self) -> None:
        sanity = self.trainer.sanity_checking
        super().on_validation_epoch_end()
        if sanity or not self.history:
            return
        row = self.history[-1]
        row["unl_loss"] = (
            float(self.unl_loss_mean.compute()) if self.unl_loss_mean.update_count else float("nan")
        )
        row["unl_confident"] = (
            float(self.unl_conf_mean.compute()) if self.unl_conf_mean.update_count else float("nan")
        )
