"""A loss weight of 0 is a true control: the image never reaches the network and a batch left without any
image takes no optimiser step (AdamW's momentum and weight decay would move the weights on a zero gradient).

The runs train a tiny conv + batch-norm network through a real Lightning Trainer, so the optimiser, its
state and the batch-norm statistics are the ones a run gets.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import lightning as L
import pytest
import torch
from torch import nn

from teachseg.losses import BCEDiceLoss
from teachseg.training.module import SegmentationModule

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*(validation_step|does not have many workers|num_workers|Total length).*"
)

L_, P_ = False, True  # labelled, pseudo-labelled
#: Four batches; the second holds pseudo-labelled images only.
LAYOUT = [[L_, P_, P_, P_], [P_, P_, P_, P_], [L_, L_, P_, P_], [P_, P_, L_, P_]]


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 1, 1))


def _batches(layout: list[list[bool]], pseudo_weight_map: float = 1.0) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    out = []
    for flags in layout:
        n = len(flags)
        is_pseudo = torch.tensor(flags)
        # pseudo-labelled images are brighter and noisier: batch norm would see the difference
        image = torch.randn(n, 3, 8, 8, generator=g) + 3.0 * is_pseudo.view(n, 1, 1, 1)
        target = (torch.rand(n, 1, 8, 8, generator=g) > 0.5).float()
        weight = torch.ones(n, 1, 8, 8)
        weight[is_pseudo] = pseudo_weight_map
        out.append({"image": image, "target": target, "weight": weight, "is_pseudo": is_pseudo})
    return out


def _labelled_only(batches: list[dict[str, torch.Tensor]]) -> list[dict[str, torch.Tensor]]:
    """The same batches without their pseudo-labelled images (and without the batches left empty)."""
    kept = [{k: v[~b["is_pseudo"]] for k, v in b.items()} for b in batches]
    return [b for b in kept if len(b["image"])]


class _Stream:
    """A fixed sequence of batches, the same every epoch."""

    def __init__(self, batches: list[dict[str, torch.Tensor]]):
        self.batches = batches

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def _fit(batches: list[dict[str, torch.Tensor]], pseudo_weight: float, epochs: int = 2) -> SegmentationModule:
    module = SegmentationModule(
        _net(),
        BCEDiceLoss(pseudo_weight=pseudo_weight),
        lr=0.05,
        weight_decay=0.5,  # large: a step on a zero gradient would show
        epochs=epochs,
        channels_last=False,
    )
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, train_dataloaders=_Stream(batches))
    module.adamw_steps = [int(s["step"]) for s in trainer.optimizers[0].state.values()]  # type: ignore[attr-defined]
    return module


def _state(module: SegmentationModule) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.model.state_dict().items()}


def test_pseudo_weight_zero_is_a_run_on_the_labelled_images_alone():
    """Weights and batch-norm statistics end exactly as a run given only the labelled images of the same
    batches, in the same order: the all-pseudo batch took no step, and no pseudo image was forwarded."""
    batches = _batches(LAYOUT)
    control = _fit(batches, pseudo_weight=0.0)
    alone = _fit(_labelled_only(batches), pseudo_weight=1.0)
    got, want = _state(control), _state(alone)
    assert got.keys() == want.keys() and any(k.endswith("running_mean") for k in got)
    for key in want:
        assert torch.equal(got[key], want[key]), key
    # 3 batches of 4 hold a labelled image, each epoch: 6 AdamW steps for every parameter, not 8
    assert control.adamw_steps == alone.adamw_steps and set(control.adamw_steps) == {6}
    # and the pseudo-labelled images do matter when they are weighted
    weighted = _state(_fit(batches, pseudo_weight=1.0))
    assert not all(torch.equal(weighted[k], want[k]) for k in want)


def test_a_batch_with_no_weight_moves_nothing():
    """One epoch of batches whose every image weighs 0 (pseudo-labelled under pseudo_weight 0, or with an
    all-zero weight map): parameters, batch-norm statistics and the optimiser state stay as they were."""
    before = _state(SegmentationModule(_net(), BCEDiceLoss(), channels_last=False))
    for batches, pseudo_weight in (
        (_batches([[P_, P_], [P_, P_, P_]]), 0.0),
        (_batches([[P_, P_], [P_, P_, P_]], pseudo_weight_map=0.0), 1.0),
    ):
        module = _fit(batches, pseudo_weight, epochs=1)
        after = _state(module)
        for key in before:
            assert torch.equal(after[key], before[key]), key
        assert module.adamw_steps == []  # AdamW never stepped: no moments, no step count


def test_an_image_with_an_all_zero_weight_map_is_not_forwarded():
    """A pseudo-labelled image the teacher was unsure of everywhere (threshold confidence mode) weighs
    nothing: it is left out of the forward pass like a pseudo image under pseudo_weight 0."""
    batches = _batches(LAYOUT, pseudo_weight_map=0.0)
    ignored = _state(_fit(batches, pseudo_weight=1.0))
    alone = _state(_fit(_labelled_only(batches), pseudo_weight=1.0))
    for key in alone:
        assert torch.equal(ignored[key], alone[key]), key


class _PerRank(L.LightningDataModule):
    """Each DDP rank its own fixed batches."""

    def __init__(self, per_rank: list[list[dict[str, torch.Tensor]]]):
        super().__init__()
        self.per_rank = per_rank

    def train_dataloader(self) -> _Stream:
        return _Stream(self.per_rank[self.trainer.global_rank])

    def val_dataloader(self) -> _Stream:
        masks = [torch.zeros(8, 8, dtype=torch.uint8), torch.ones(8, 8, dtype=torch.uint8)]
        return _Stream([{"image": torch.randn(2, 3, 8, 8), "mask": masks, "index": [0, 1]}])


class _SaveEachRank(L.Callback):
    def __init__(self, folder: str):
        self.folder = folder

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        steps = [int(s["step"]) for s in trainer.optimizers[0].state.values()]
        state = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
        torch.save({"state": state, "steps": steps}, f"{self.folder}/rank{trainer.global_rank}.pt")


@pytest.mark.slow
def test_under_ddp_a_step_is_skipped_only_when_no_rank_has_weight(tmp_path):
    """Two CPU processes: at the first step only rank 0 has a labelled image (rank 1 gives a zero gradient and
    forwards nothing), at the second neither has (no step on either), at the third both have. The ranks end
    with the same weights after two AdamW steps, and, once validation's forward pass has copied rank 0's
    buffers everywhere, the same batch-norm statistics."""
    per_rank = [_batches([[L_, P_], [P_, P_], [L_, L_]]), _batches([[P_, P_], [P_, P_], [P_, L_]])]
    module = SegmentationModule(
        _net(), BCEDiceLoss(pseudo_weight=0.0), lr=0.05, epochs=1, channels_last=False
    )
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
        callbacks=[_SaveEachRank(str(tmp_path))],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, datamodule=_PerRank(per_rank))
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert ranks[0]["steps"] == ranks[1]["steps"] and set(ranks[0]["steps"]) == {2}
    before = _state(SegmentationModule(_net(), BCEDiceLoss(), channels_last=False))
    state0, state1 = ranks[0]["state"], ranks[1]["state"]
    assert state0.keys() == state1.keys()
    for key in state0:
        assert torch.equal(state0[key], state1[key]), key
    assert not torch.equal(state0["model.0.weight"], before["0.weight"])
    # rank 0's statistics: batch norm counted the two training forwards rank 0 made (rank 1 made one)
    assert int(state0["model.1.num_batches_tracked"]) == 2
