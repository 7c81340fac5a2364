"""Training and evaluation datasets, the epoch-seeded sampler, pseudo-label confidence weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from teachseg.config import AugmentConfig
from teachseg.data.datasets import EpochSampler, EvalDataset, Record, SegmentationDataset, collate_eval
from teachseg.data.transforms import JointTransform, Normalise
from teachseg.errors import DataError

NORM = Normalise((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def _records(root: Path, n: int = 4) -> list[Record]:
    names = sorted(p.name for p in (root / "images").iterdir())[:n]
    return [Record(id=n, image=root / "images" / n, masks=(root / "masks" / n,)) for n in names]


def _dataset(records: list[Record], **kw) -> SegmentationDataset:
    return SegmentationDataset(records, 32, JointTransform(32, AugmentConfig()), NORM, seed=5, **kw)


def test_training_items_have_the_right_shapes_and_dtypes(synth_data: Path) -> None:
    ds = _dataset(_records(synth_data))
    assert len(ds) == 4
    item = ds[0]
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
    assert item["target"].shape == (1, 32, 32) and item["target"].dtype == torch.float32
    assert item["weight"].shape == (1, 32, 32)
    assert set(torch.unique(item["target"]).tolist()) <= {0.0, 1.0}
    assert torch.equal(item["weight"], torch.ones(1, 32, 32))
    assert item["is_pseudo"].item() is False
    # normalised: not in [0, 1] any more
    assert float(item["image"].min()) < 0


def test_augmentation_is_reproducible_per_index_and_epoch(synth_data: Path) -> None:
    records = _records(synth_data)
    a, b = _dataset(records), _dataset(records, cache=False)
    for key in [(1, 0), (1, 3), (2, 3)]:
        x, y = a[key], b[key]
        assert torch.equal(x["image"], y["image"]) and torch.equal(x["target"], y["target"])
    assert torch.equal(a[1]["image"], a[(1, 0)]["image"])  # a plain index means epoch 0
    epochs = [a[(1, e)]["image"] for e in range(3)]
    assert not torch.equal(epochs[0], epochs[1]) or not torch.equal(epochs[1], epochs[2])


def test_pseudo_records_yield_confidence_weights(tmp_path: Path, synth_data: Path) -> None:
    image = sorted((synth_data / "images").iterdir())[0]
    prob = np.zeros((64, 64), np.uint8)
    prob[:, :16] = 255  # certain tumour
    prob[:, 16:32] = 128  # unsure
    prob[:, 32:48] = 191  # fairly sure
    # columns 48.. certain background (0)
    Image.fromarray(prob).save(tmp_path / "p.png")
    rec = Record(id="p", image=image, pseudo=tmp_path / "p.png")
    off = JointTransform(64, AugmentConfig(enabled=False))
    linear = SegmentationDataset([rec], 64, off, NORM, confidence_mode="linear")[0]
    assert linear["is_pseudo"].item() is True
    w = linear["weight"][0]
    # confidence only: selftrain.pseudo_weight is applied by the loss through is_pseudo
    assert torch.allclose(w[:, :16], torch.tensor(1.0))
    assert float(w[:, 16:32].max()) < 0.01
    assert torch.allclose(w[:, 32:48], torch.tensor(abs(2 * 191 / 255 - 1)), atol=1e-4)
    assert torch.allclose(w[:, 48:], torch.tensor(1.0))
    assert torch.allclose(
        linear["target"][0, :, 32:48], torch.tensor(191 / 255), atol=1e-4
    )  # soft target kept
    thr = SegmentationDataset([rec], 64, off, NORM, confidence_mode="threshold", confidence_threshold=0.7)[0]
    assert set(torch.unique(thr["weight"][0, :, 16:32]).tolist()) == {0.0}
    assert set(torch.unique(thr["weight"][0, :, 32:48]).tolist()) == {1.0}


def test_pseudo_weight_multiplies_the_pseudo_labelled_part_of_the_loss(
    tmp_path: Path, synth_data: Path
) -> None:
    # Folded into the pixel weights, pseudo_weight cancelled in the normalised BCE and in Dice: a batch of
    # pseudo-labelled images gave the same loss for 0.1, 0.5 and 1.0. Now the dataset flags the images and the
    # loss weighs them.
    from torch.utils.data import default_collate

    from teachseg.losses import BCEDiceLoss

    images = sorted((synth_data / "images").iterdir())[:4]
    records = _records(synth_data, 2)
    for k, image in enumerate(images[2:]):
        prob = (np.random.default_rng(k).random((64, 64)) * 255).astype(np.uint8)
        Image.fromarray(prob).save(tmp_path / f"p{k}.png")
        records.append(Record(id=f"p{k}", image=image, pseudo=tmp_path / f"p{k}.png"))
    off = JointTransform(32, AugmentConfig(enabled=False))
    batch = default_collate([SegmentationDataset(records, 32, off, NORM)[i] for i in range(4)])
    assert batch["is_pseudo"].tolist() == [False, False, True, True]
    logits = torch.randn(4, 1, 32, 32, generator=torch.Generator().manual_seed(0))

    def loss(w: float, sel: slice = slice(None)) -> float:
        args = (logits[sel], batch["target"][sel], batch["weight"][sel], batch["is_pseudo"][sel])
        return float(BCEDiceLoss(pseudo_weight=w)(*args))

    only_pseudo = slice(2, 4)
    assert loss(0.1, only_pseudo) == pytest.approx(0.1 * loss(1.0, only_pseudo), rel=1e-6)
    assert loss(0.5, only_pseudo) == pytest.approx(0.5 * loss(1.0, only_pseudo), rel=1e-6)
    assert loss(0.0) == pytest.approx(loss(1.0, slice(0, 2)), rel=1e-6)  # labelled images alone


def test_target_of_another_size_is_a_data_error(tmp_path: Path, synth_data: Path) -> None:
    image = sorted((synth_data / "images").iterdir())[0]
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(tmp_path / "small.png")
    ds = _dataset([Record(id="x", image=image, masks=(tmp_path / "small.png",))])
    with pytest.raises(DataError, match="small.png"):
        ds[0]
    pseudo = _dataset([Record(id="x", image=image, pseudo=tmp_path / "small.png")])
    with pytest.raises(DataError, match="small.png"):
        pseudo[0]


def test_eval_dataset_keeps_the_mask_at_native_size(tmp_path: Path, synth_data: Path) -> None:
    records = _records(synth_data, 3)
    ds = EvalDataset(records, 32, NORM)
    item = ds[1]
    assert item["image"].shape == (3, 32, 32)
    assert item["mask"].shape == (64, 64) and item["mask"].dtype == torch.uint8
    batch = collate_eval([ds[0], ds[1], ds[2]])
    assert batch["image"].shape == (3, 3, 32, 32)
    assert [m.shape for m in batch["mask"]] == [(64, 64)] * 3
    assert batch["index"] == [0, 1, 2]


@pytest.mark.parametrize("n, replicas", [(10, 1), (10, 2), (11, 2), (7, 3), (2, 4)])
def test_epoch_sampler_shards_cover_every_index(n: int, replicas: int) -> None:
    shards = []
    for rank in range(replicas):
        s = EpochSampler(n, seed=3, num_replicas=replicas, rank=rank)
        s.set_epoch(2)
        items = list(s)
        assert len(items) == len(s) == -(-n // replicas)  # every rank the same length
        assert all(epoch == 2 for _, epoch in items)
        shards.append([i for i, _ in items])
    flat = [i for shard in shards for i in shard]
    assert set(flat) == set(range(n))
    assert len(flat) - len(set(flat)) == len(flat) - n  # only the padding repeats


def test_epoch_sampler_order_depends_on_seed_and_epoch_only() -> None:
    a, b = EpochSampler(20, seed=1), EpochSampler(20, seed=1)
    a.set_epoch(4)
    b.set_epoch(4)
    assert list(a) == list(b)
    b.set_epoch(5)
    assert list(a) != list(b)
    assert list(EpochSampler(20, seed=2)) != list(EpochSampler(20, seed=1))
