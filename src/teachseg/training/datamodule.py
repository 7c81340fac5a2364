"""The DataModule: loaders over prepared datasets, with an epoch-seeded, DDP-aware sampler."""

from __future__ import annotations

import lightning as L
from torch.utils.data import DataLoader

from teachseg.data.datasets import EpochSampler, EvalDataset, SegmentationDataset, collate_eval


class SegDataModule(L.LightningDataModule):
    """Wraps a training and a validation dataset.

    The training sampler shards by the trainer's rank and world size (Lightning's own sampler replacement is
    switched off so the (seed, epoch) order survives resumes and DDP alike).
    """

    def __init__(
        self,
        train_ds: SegmentationDataset,
        val_ds: EvalDataset,
        batch_size: int = 8,
        num_workers: int = 0,
        seed: int = 0,
    ):
        super().__init__()
        self.train_ds = train_ds
        self.val_ds = val_ds
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed

    def train_dataloader(self) -> DataLoader:
        world = self.trainer.world_size if self.trainer else 1
        rank = self.trainer.global_rank if self.trainer else 0
        sampler = EpochSampler(len(self.train_ds), self.seed, num_replicas=world, rank=rank)
        per_rank = len(sampler)
        return DataLoader(
            self.train_ds,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            drop_last=per_rank >= 2 * self.batch_size,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(
            self.val_ds, batch_size=self.batch_size, shuffle=False, num_workers=0, collate_fn=collate_eval
        )
