"""Loaders of the online methods: a labelled and an unlabelled stream, combined step by step."""

from __future__ import annotations

from collections.abc import Iterator

import lightning as L
import torch
from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import DataLoader, Dataset

from teachseg.data.datasets import EpochSampler, EvalDataset, SegmentationDataset, collate_eval
from teachseg.data.views import UnlabelledViews


class CycleSampler(EpochSampler):
    """Yields exactly ``length`` items per rank and epoch, cycling through fresh shuffles of the ``n`` images.

    The unlabelled stream must last as long as the labelled one whatever the two sizes; each pass through the
    images gets its own key ``epoch * 1000 + pass``, so an image met twice in an epoch gets other views.
    """

    def __init__(self, n: int, seed: int, length: int, num_replicas: int = 1, rank: int = 0):
        super().__init__(n, seed, num_replicas=num_replicas, rank=rank)
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[tuple[int, int]]:
        total = self.length * self.num_replicas
        order: list[tuple[int, int]] = []
        k = 0
        while len(order) < total:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch * 1009 + k)
            order += [(i, self.epoch * 1000 + k) for i in torch.randperm(self.n, generator=g).tolist()]
            k += 1
        yield from order[self.rank : total : self.num_replicas]


class OnlineDataModule(L.LightningDataModule):
    """Batches ``{"labelled": ..., "unlabelled": ...}``; an epoch is one pass over the labelled images, or
    over the unlabelled ones (``epoch_over``).

    ``epoch_over="labelled"`` (the default): the epoch is the labelled loader's length, the same number of
    optimiser steps as the supervised baseline with the same epochs, so a method cannot win by taking more
    steps; the unlabelled stream is cycled and reshuffled every epoch, so over the run every unlabelled image
    is seen. ``epoch_over="unlabelled"``: FixMatch's and UniMatch's convention, one pass over the unlabelled
    images (about unlabelled/labelled times the steps) with the labelled images cycled; compare it with a
    supervised run of the same steps (``unlabelled_weight`` 0), not only with the plain baseline. Both samplers
    are epoch-seeded and DDP-aware (:class:`~teachseg.data.datasets.EpochSampler`).
    """

    def __init__(
        self,
        labelled: SegmentationDataset,
        unlabelled: UnlabelledViews,
        val_ds: EvalDataset,
        batch_size: int = 8,
        unlabelled_batch_size: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
        epoch_over: str = "labelled",
    ):
        super().__init__()
        self.labelled = labelled
        self.unlabelled = unlabelled
        self.val_ds = val_ds
        self.batch_size = batch_size
        self.unlabelled_batch_size = unlabelled_batch_size or batch_size
        self.num_workers = num_workers
        self.seed = seed
        if epoch_over not in ("labelled", "unlabelled"):
            raise ValueError(f"epoch_over must be labelled or unlabelled, got {epoch_over!r}")
        self.epoch_over = epoch_over

    def _loader(self, ds: Dataset, batch_size: int, sampler: EpochSampler, drop_last: bool) -> DataLoader:
        return DataLoader(
            ds,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            drop_last=drop_last,
        )

    def train_dataloader(self) -> CombinedLoader:
        world = self.trainer.world_size if self.trainer else 1
        rank = self.trainer.global_rank if self.trainer else 0
        lab_sampler: EpochSampler = EpochSampler(len(self.labelled), self.seed, num_replicas=world, rank=rank)
        drop = len(lab_sampler) >= 2 * self.batch_size
        steps = len(lab_sampler) // self.batch_size if drop else -(-len(lab_sampler) // self.batch_size)
        if self.epoch_over == "unlabelled":
            per_rank = -(-len(self.unlabelled) // world)
            steps = max(per_rank // self.unlabelled_batch_size, 1)
            lab_sampler = CycleSampler(len(self.labelled), self.seed, steps * self.batch_size, world, rank)
            drop = True
        unl_sampler = CycleSampler(
            len(self.unlabelled), self.seed + 7919, steps * self.unlabelled_batch_size, world, rank
        )
        return CombinedLoader(
            {
                "labelled": self._loader(self.labelled, self.batch_size, lab_sampler, drop),
                "unlabelled": self._loader(self.unlabelled, self.unlabelled_batch_size, unl_sampler, True),
            },
            mode="min_size",
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(
            self.val_ds, batch_size=self.batch_size, shuffle=False, num_workers=0, collate_fn=collate_eval
        )
