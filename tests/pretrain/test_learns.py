"""Pretraining learns: on a task where the stripes' orientation, not brightness, marks the mask
(tests/pretrain/texture_task.py), fine-tuning LinkNet from the encoder that DenseCL pretrained without labels on
128 unlabelled images beats the same fine-tuning from random initialisation, at equal fine-tuning steps (40 AdamW
steps on 4 masks): by a margin on average over two pretraining seeds (each averaged over four fine-tuning seeds),
and for each of them.

The comparison is built so that only what pretraining learnt differs:

* the random initialisation is the pretraining's own starting point (same seed,
  :func:`teachseg.pretrain.run.initial_encoder`), not another draw;
* before scoring, both arms' batch-norm statistics are estimated again on the labelled images (what long
  training would leave there), so the pool's statistics, which pretraining also records, are no advantage.

Without these, an earlier version of this test passed with the pretraining loss multiplied by 0: its "gain" was
the luck of another initialisation plus batch-norm statistics of in-domain images after few fine-tuning steps.

What was measured (CPU, regnetx_002, mean test Dice gain of the pretrained encoder over its own random start,
four fine-tuning seeds, 40 steps; per pretraining seed):

    task                                  objective  size  epochs  gain
    fine noise ellipse on coarse noise    densecl    64    12      +0.022, +0.018
    fine noise ellipse on coarse noise    densecl    64    48      -0.040 (seed 0; zoomed views blur the cue)
    fine noise ellipse on coarse noise    simclr     32    75      -0.088 (seed 0)
    horizontal stripes on vertical ones   densecl    64    12      +0.043, +0.062
    horizontal stripes on vertical ones   densecl    64    24      +0.097, +0.052   (phases drawn in [0, 6.3))
    horizontal stripes on vertical ones   densecl    64    24      +0.116, +0.021   (this test)

Gains vary much between pretraining seeds, so the margin (0.035, half the smallest mean over the two seeds
measured) is on their mean, and each seed need only gain. With the loss multiplied by 0 (weight decay alone moves
the weights, a little) the gains were +0.008 and +0.010: the test fails.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from teachseg.config import Config
from teachseg.losses import BCEDiceLoss
from teachseg.models import IMAGENET_MEAN, IMAGENET_STD, build_model
from teachseg.pretrain.pool import resolved_settings
from teachseg.pretrain.run import initial_encoder, pretrain_encoder
from tests.conftest import TINY
from tests.pretrain.texture_task import striped_set, write_pool

pytestmark = pytest.mark.slow

SIZE = 64
ENCODER = "tu-regnetx_002"  # the fastest smp-compatible encoder on a CPU (3x resnet18's throughput here)
PRETRAIN = {"objective": "densecl", "epochs": 24, "batch_size": 32, "lr": 3e-3, "temperature": 0.5}
FINETUNE_STEPS = 40
FINETUNE_SEEDS = 4
MARGIN = 0.035


def _tensor(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    return (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def _recompute_batchnorm(model: torch.nn.Module, x: torch.Tensor) -> None:
    """Batch-norm running statistics estimated again, exactly, on ``x`` (and its mirror image)."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # a cumulative average: one pass gives the batch's statistics
    model.train()
    with torch.no_grad():
        model(torch.cat([x, x.flip(-1)]))


def finetune_dice(weights: Path, seed: int, labelled, test) -> float:
    """Test Dice of LinkNet after FINETUNE_STEPS steps on the labelled images (random flips), from ``weights``."""
    torch.manual_seed(100 + seed)
    model = build_model("linknet", ENCODER, weights)
    x, y = _tensor(labelled[0]), torch.from_numpy(labelled[1]).float()[:, None]
    loss = BCEDiceLoss()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    flips = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(FINETUNE_STEPS):
        xb, yb = (x.flip(-1), y.flip(-1)) if torch.rand((), generator=flips) < 0.5 else (x, y)
        opt.zero_grad()
        loss(model(xb), yb).backward()
        opt.step()
    _recompute_batchnorm(model, x)
    model.eval()
    with torch.no_grad():
        pred = (model(_tensor(test[0])) > 0).float()
    truth = torch.from_numpy(test[1]).float()[:, None]
    dice = (2 * (pred * truth).sum((1, 2, 3)) + 1) / (pred.sum((1, 2, 3)) + truth.sum((1, 2, 3)) + 1)
    return float(dice.mean())


def test_finetuning_from_the_pretrained_encoder_beats_random_init(tmp_path: Path) -> None:
    pool = write_pool(tmp_path / "pool", striped_set(128, SIZE, seed=1)[0])
    labelled, test = striped_set(4, SIZE, seed=2), striped_set(48, SIZE, seed=3)
    gains = []
    for seed in (0, 1):
        cfg = Config.model_validate(
            {
                **TINY,
                "seed": seed,
                "data": {**TINY["data"], "image_size": SIZE},
                "train": {**TINY["train"], "channels_last": False},
                "pretrain": PRETRAIN,
            }
        )
        start = tmp_path / f"random{seed}.safetensors"
        net = initial_encoder(ENCODER, seed, SIZE, PRETRAIN["objective"])
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(start))
        out = tmp_path / f"pretrained{seed}"
        settings = resolved_settings(cfg, "ultrasound")
        pretrain_encoder(cfg, pool, out, encoder=ENCODER, settings=settings, identity=f"stripes{seed}")
        pretrained = [finetune_dice(out, s, labelled, test) for s in range(FINETUNE_SEEDS)]
        random = [finetune_dice(start, s, labelled, test) for s in range(FINETUNE_SEEDS)]
        gains.append(float(np.mean(pretrained) - np.mean(random)))
        print(f"seed {seed}: pretrained {np.round(pretrained, 3)}, its random start {np.round(random, 3)}")
    assert np.mean(gains) > MARGIN and min(gains) > 0, gains
