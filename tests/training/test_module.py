"""The LightningModule: native-resolution validation metrics, optimiser, history in checkpoints, bf16."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from teachseg.losses import BCEDiceLoss
from teachseg.training.module import SegmentationModule


class _SignOfFirstChannel(nn.Module):
    """Logits = 20 * channel 0: a model whose predictions the test controls exactly."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(20.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x[:, :1]


def _module(**kw) -> SegmentationModule:
    return SegmentationModule(_SignOfFirstChannel(), BCEDiceLoss(), **kw)


def test_validation_scores_at_native_resolution() -> None:
    module = _module(channels_last=False)
    x = -torch.ones(3, 3, 32, 32)
    x[0, 0, :16] = 1  # predicts the top half
    x[2, 0] = 1  # predicts everything
    masks = [torch.zeros(64, 64, dtype=torch.uint8) for _ in range(3)]
    masks[0][:32] = 1  # exactly the top half at native size -> Dice 1
    # masks[1] empty and predicted empty -> Dice 1
    masks[2][:32] = 1  # everything predicted, half true -> Dice 2/3
    module.validation_step({"image": x, "mask": masks, "index": [0, 1, 2]}, 0)
    assert float(module.val_dice_mean.compute()) == pytest.approx((1 + 1 + 2 / 3) / 3, abs=1e-6)
    assert float(module.val_jaccard_mean.compute()) == pytest.approx((1 + 1 + 0.5) / 3, abs=1e-6)
    assert float(module.val_loss_mean.compute()) > 0


@pytest.mark.filterwarnings("ignore:You are trying to `self.log")
def test_training_step_returns_a_differentiable_loss() -> None:
    module = _module()
    batch = {
        "image": torch.randn(2, 3, 16, 16),
        "target": (torch.rand(2, 1, 16, 16) > 0.5).float(),
        "weight": torch.ones(2, 1, 16, 16),
    }
    loss = module.training_step(batch, 0)
    loss.backward()
    assert loss.ndim == 0 and module.model.scale.grad is not None
    assert float(module.train_loss_mean.compute()) == pytest.approx(float(loss.detach()))


@pytest.mark.filterwarnings("ignore:You are trying to `self.log")
def test_training_step_passes_the_pseudo_flags_to_the_loss() -> None:
    g = torch.Generator().manual_seed(0)
    batch = {
        "image": torch.randn(4, 3, 16, 16, generator=g),
        "target": torch.rand(4, 1, 16, 16, generator=g),
        "weight": torch.rand(4, 1, 16, 16, generator=g),
        "is_pseudo": torch.tensor([False, True, False, True]),
    }
    real = {k: v[~batch["is_pseudo"]] for k, v in batch.items()}

    def step(pseudo_weight: float, b: dict[str, torch.Tensor]) -> tuple[float, torch.Tensor]:
        module = SegmentationModule(_SignOfFirstChannel(), BCEDiceLoss(pseudo_weight=pseudo_weight))
        loss = module.training_step(b, 0)
        loss.backward()
        assert module.model.scale.grad is not None
        return float(loss.detach()), module.model.scale.grad

    # pseudo_weight=0: exactly the labelled images alone; it weighs the pseudo-labelled term linearly
    assert step(0.0, batch) == step(1.0, real)
    (l0, g0), (l_half, g_half), (l1, g1) = step(0.0, batch), step(0.5, batch), step(1.0, batch)
    assert l_half - l0 == pytest.approx(0.5 * (l1 - l0), rel=1e-5)
    assert float(g_half - g0) == pytest.approx(0.5 * float(g1 - g0), rel=1e-4)


def test_channels_last_model_and_input() -> None:
    from teachseg.models import build_model

    module = SegmentationModule(build_model("linknet", "resnet18"), BCEDiceLoss(), channels_last=True).eval()
    conv = module.model.encoder.conv1.weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert module(torch.randn(1, 3, 64, 64)).shape == (1, 1, 64, 64)


def test_optimiser_and_cosine_schedule() -> None:
    module = _module(lr=0.01, weight_decay=0.0, epochs=4)
    conf = module.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    assert isinstance(opt, torch.optim.AdamW) and opt.param_groups[0]["lr"] == pytest.approx(0.01)
    for _ in range(4):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0001)  # eta_min = 1% of lr
    assert isinstance(_module(scheduler="none").configure_optimizers(), torch.optim.AdamW)


def test_history_survives_a_checkpoint_round_trip() -> None:
    module = _module()
    module.history = [{"epoch": 1, "train_loss": 1.0, "val_loss": 1.0, "val_dice": 0.5, "val_jaccard": 0.3}]
    ckpt: dict = {}
    module.on_save_checkpoint(ckpt)
    other = _module()
    other.on_load_checkpoint(ckpt)
    assert other.history == module.history
    assert other.history is not module.history


def test_bf16_mixed_channels_last_agrees_with_fp32(tiny_run: Path) -> None:
    """Accuracy of mixed precision + channels_last on a fixed batch, same weights."""
    from teachseg.data.imageio import read_image
    from teachseg.data.transforms import Normalise, to_float_image
    from teachseg.inference.images import predict_prob
    from teachseg.metrics import image_scores
    from teachseg.models import IMAGENET_MEAN, IMAGENET_STD, load_model_folder

    model, meta = load_model_folder(tiny_run / "model")
    root = Path(__import__("yaml").safe_load((tiny_run / "config.yaml").read_text())["data"]["root"])
    images = [read_image(p) for p in sorted((root / "images").iterdir())[:8]]
    norm = Normalise(IMAGENET_MEAN, IMAGENET_STD)
    x = torch.stack([norm(to_float_image(im)) for im in images])

    fp32 = SegmentationModule(model, BCEDiceLoss(), channels_last=False).eval()
    with torch.no_grad():
        ref = torch.sigmoid(fp32(x)).float()
    fast = SegmentationModule(model, BCEDiceLoss(), channels_last=True).eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        low = torch.sigmoid(fast(x).float())
    assert (ref - low).abs().max() < 0.05
    for r, lo in zip(ref, low, strict=True):
        assert image_scores(lo[0], (r[0] > 0.5).numpy()).dice > 0.95

    # the prediction path used for evaluation and pseudo-labels agrees too
    p32 = predict_prob(model, images, meta, precision="32")
    p16 = predict_prob(model, images, meta, precision="bf16")
    assert max(float(np.abs(a - b).max()) for a, b in zip(p32, p16, strict=True)) < 0.05
