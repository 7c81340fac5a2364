"""The online methods' LightningModule and loaders, on tiny synthetic tiles."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch

from teachseg.config import AugmentConfig
from teachseg.data.datasets import EvalDataset, Record, SegmentationDataset
from teachseg.data.strong import strong_pipeline
from teachseg.data.transforms import JointTransform, Normalise
from teachseg.data.views import UnlabelledViews
from teachseg.losses import BCEDiceLoss
from teachseg.models import IMAGENET_MEAN, IMAGENET_STD, build_model
from teachseg.selftrain.online import OnlineSemiModule
from teachseg.selftrain.online_data import CycleSampler, OnlineDataModule

SIZE = 32


def _records(root: Path) -> tuple[list[Record], list[Record]]:
    labelled = [
        Record(p.stem, p, (root / "masks" / p.name,)) for p in sorted((root / "images").glob("*.png"))
    ]
    unlabelled = [Record(p.stem, p) for p in sorted((root / "unlabelled").glob("*.png"))]
    return labelled, unlabelled


def _datamodule(root: Path, two_strong: bool = False) -> OnlineDataModule:
    lab, unl = _records(root)
    norm = Normalise(IMAGENET_MEAN, IMAGENET_STD)
    aug = AugmentConfig()
    return OnlineDataModule(
        SegmentationDataset(lab[:8], SIZE, JointTransform(SIZE, aug), norm, seed=1),
        UnlabelledViews(unl, SIZE, JointTransform(SIZE, aug), norm, strong_pipeline("he"), 1, two_strong),
        EvalDataset(lab[8:12], SIZE, norm),
        batch_size=4,
        seed=1,
    )


def _fit(module: OnlineSemiModule, dm: OnlineDataModule, tmp_path: Path, epochs: int = 2) -> L.Trainer:
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(module, datamodule=dm)
    return trainer


@pytest.mark.parametrize(
    ("method", "options"),
    [
        ("mean_teacher", {"evaluate": "ema"}),
        ("fixmatch", {"confidence": 0.9}),
        ("fixmatch", {"confidence": 0.9, "teacher": "ema", "feature_dropout": 0.5, "two_strong": True}),
    ],
)
def test_online_methods_train_and_record_their_statistics(synth_data, tmp_path, method, options):
    torch.manual_seed(0)
    model = build_model("linknet", "resnet18", None)
    module = OnlineSemiModule(
        model, BCEDiceLoss(), method=method, epochs=2, rampup_epochs=1, seed=3, channels_last=False, **options
    )
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _fit(module, _datamodule(synth_data, options.get("two_strong", False)), tmp_path)
    assert len(module.history) == 2
    row = module.history[-1]
    assert 0.0 <= row["unl_confident"] <= 1.0 and row["unl_loss"] >= 0.0
    assert 0.0 <= row["val_dice"] <= 1.0
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    state = module.state_dict()
    if module.ema is not None:
        assert any(k.startswith("ema.module.") for k in state) and int(state["ema.n_averaged"]) > 0
    prefix = module.export_prefix
    exported = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    assert exported.keys() == model.state_dict().keys()


def test_bad_options_are_refused():
    model = build_model("linknet", "resnet18", None)
    with pytest.raises(ValueError, match=r"\(0.5, 1\)"):
        OnlineSemiModule(model, BCEDiceLoss(), method="fixmatch", confidence=1.0)
    with pytest.raises(ValueError, match="mean_teacher or fixmatch"):
        OnlineSemiModule(model, BCEDiceLoss(), method="unimatch")  # type: ignore[arg-type]


def test_epoch_has_as_many_steps_as_the_labelled_loader(synth_data):
    dm = _datamodule(synth_data)
    loader = dm.train_dataloader()
    batches = list(iter(loader))
    assert len(batches) == 2  # 8 labelled images, batch 4, whatever the number of unlabelled images
    first = batches[0][0] if isinstance(batches[0], tuple) else batches[0]
    assert set(first) == {"labelled", "unlabelled"}
    assert set(first["unlabelled"]) == {"weak", "strong"}
    assert first["unlabelled"]["weak"].shape == (4, 3, SIZE, SIZE)


def test_cycle_sampler_covers_every_image_and_is_reproducible():
    s = CycleSampler(5, seed=2, length=12)
    s.set_epoch(3)
    items = list(s)
    assert len(items) == 12 and {i for i, _ in items} == set(range(5))
    assert items == list(s)
    keys = [k for _, k in items]
    assert keys[:5] == [3000] * 5 and keys[5:10] == [3001] * 5
    a, b = CycleSampler(5, 2, 6, num_replicas=2, rank=0), CycleSampler(5, 2, 6, num_replicas=2, rank=1)
    assert len(list(a)) == len(list(b)) == 6


def test_under_ddp_each_rank_draws_other_unlabelled_images(synth_data):
    """The loaders shard both streams by the trainer's rank: the same number of steps on every rank, and
    within a pass over the unlabelled images no two ranks draw the same one."""
    from types import SimpleNamespace

    seen: list[list[int]] = []
    steps: list[int] = []
    for rank in (0, 1):
        dm = _datamodule(synth_data)
        dm.batch_size = dm.unlabelled_batch_size = 2
        dm.trainer = SimpleNamespace(world_size=2, global_rank=rank)  # type: ignore[assignment]
        loaders = dm.train_dataloader().iterables
        lab, unl = loaders["labelled"], loaders["unlabelled"]
        assert isinstance(unl.sampler, CycleSampler) and unl.sampler.rank == rank
        unl.sampler.set_epoch(1)
        steps.append(len(lab))
        seen.append([int(i) for i, _ in unl.sampler])
    # 8 labelled images: 4 per rank, 2 batches of 2 each; the unlabelled stream lasts as long (2 x 2)
    assert steps == [2, 2] and len(seen[0]) == len(seen[1]) == 4
    n = len(dm.unlabelled)
    assert n == 4  # one pass of 4 images covers both ranks' 2 + 2 first draws
    assert not set(seen[0][:2]) & set(seen[1][:2])
    assert sorted(seen[0][:2] + seen[1][:2]) == list(range(n))


def test_each_ddp_rank_draws_its_own_cutmix_boxes():
    """The step's random draws depend on the run's seed, the step and the rank: rank 0 draws what a single
    device draws (so single-device runs are unchanged), the other ranks draw other boxes for their shards."""
    from types import SimpleNamespace

    from teachseg.data.strong import cutmix_boxes

    module = OnlineSemiModule(build_model("linknet", "resnet18", None), BCEDiceLoss(), seed=3)
    assert module._step_seed() == 3 * 1_000_003  # no trainer: step 0, rank 0
    boxes, seeds = [], []
    for rank in (0, 1, 2):
        module._trainer = SimpleNamespace(global_rank=rank, global_step=5)  # type: ignore[assignment]
        seeds.append(module._step_seed())
        boxes.append(cutmix_boxes(8, 64, 64, torch.Generator().manual_seed(seeds[-1]), p=1.0))
    assert seeds[0] == 3 * 1_000_003 + 5 and len(set(seeds)) == 3
    assert not torch.equal(boxes[0], boxes[1]) and not torch.equal(boxes[1], boxes[2])
    module._trainer = SimpleNamespace(global_rank=1, global_step=5)  # type: ignore[assignment]
    assert module._step_seed() == seeds[1]  # and reproducible


def _unlabelled_heavy(
    root: Path, epoch_over: str, unlabelled: list[Record] | None = None
) -> OnlineDataModule:
    """4 labelled images and 12 unlabelled ones (the other labelled images' pictures, no masks), batch 2."""
    lab, _ = _records(root)
    unl = unlabelled if unlabelled is not None else [Record(r.id, r.image) for r in lab[4:16]]
    norm = Normalise(IMAGENET_MEAN, IMAGENET_STD)
    aug = AugmentConfig()
    return OnlineDataModule(
        SegmentationDataset(lab[:4], SIZE, JointTransform(SIZE, aug), norm, seed=1),
        UnlabelledViews(unl, SIZE, JointTransform(SIZE, aug), norm, strong_pipeline("he"), 1),
        EvalDataset(lab[:2], SIZE, norm),
        batch_size=2,
        seed=1,
        epoch_over=epoch_over,
    )


def test_an_epoch_over_the_unlabelled_images_cycles_the_labelled_ones(synth_data):
    """FixMatch's convention: one pass over the 12 unlabelled images (6 batches of 2), the 4 labelled images
    cycled (each met 3 times, with other augmentation keys); by default the epoch is the labelled pass (2)."""
    assert len(list(iter(_unlabelled_heavy(synth_data, "labelled").train_dataloader()))) == 2
    loaders = _unlabelled_heavy(synth_data, "unlabelled").train_dataloader().iterables
    lab, unl = loaders["labelled"], loaders["unlabelled"]
    lab.sampler.set_epoch(2)
    unl.sampler.set_epoch(2)
    assert len(lab) == len(unl) == 6
    assert isinstance(lab.sampler, CycleSampler)
    drawn = list(lab.sampler)
    assert len(drawn) == 12 and sorted(i for i, _ in drawn) == sorted(list(range(4)) * 3)
    assert {k for _, k in drawn} == {2000, 2001, 2002}  # a key per pass: the repeats are augmented anew
    assert sorted(int(i) for i, _ in unl.sampler) == list(range(12))  # every unlabelled image once
    with pytest.raises(ValueError, match="labelled or unlabelled"):
        _unlabelled_heavy(synth_data, "both")


def test_unlabelled_weight_zero_is_a_supervised_run_of_the_same_steps(synth_data, tmp_path):
    """The steps control: with unlabelled_weight 0 the unlabelled images change nothing (other unlabelled
    images give bit-identical weights) while the run takes the unlabelled epoch's steps."""
    lab, _ = _records(synth_data)
    others = [Record(r.id, r.image) for r in lab[4:16]]
    states, steps = [], []
    for unl in (others, list(reversed(others))):
        torch.manual_seed(0)
        model = build_model("linknet", "resnet18", None)
        module = OnlineSemiModule(
            model,
            BCEDiceLoss(),
            method="fixmatch",
            unlabelled_weight=0.0,
            epochs=1,
            seed=3,
            channels_last=False,
        )
        trainer = _fit(module, _unlabelled_heavy(synth_data, "unlabelled", unl), tmp_path, epochs=1)
        steps.append(trainer.global_step)
        states.append(model.state_dict())
        row = module.history[-1]
        assert row["unl_loss"] != row["unl_loss"]  # NaN: no unlabelled loss was computed
    assert steps == [6, 6]
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


class _Passes(torch.nn.Module):
    """A network that logs every input it sees: which network (``name``: ``model`` or ``ema``), which path
    (the whole network, or the encoder of the feature-dropout view), the input's tag (each view of a batch is
    a constant image: labelled 4, weak 1, strong 2, second strong 3) and whether gradients were on."""

    log: list[tuple[str, str, int, bool]] = []

    def __init__(self) -> None:
        super().__init__()
        self.name = "model"
        self.segmentation_head = torch.nn.Conv2d(3, 1, 1)

    def _see(self, path: str, x: torch.Tensor) -> None:
        self.log.append((self.name, path, round(float(x.mean())), torch.is_grad_enabled()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._see("net", x)
        return self.segmentation_head(x)

    def encoder(self, x: torch.Tensor) -> list[torch.Tensor]:
        self._see("encoder", x)
        return [x]

    def decoder(self, features: list[torch.Tensor]) -> torch.Tensor:
        return features[-1]


def _tagged_batch(two_strong: bool) -> dict[str, dict[str, torch.Tensor]]:
    def const(v: float) -> torch.Tensor:
        return torch.full((2, 3, 8, 8), v)

    unl = {"weak": const(1.0), "strong": const(2.0)} | ({"strong2": const(3.0)} if two_strong else {})
    target = torch.zeros(2, 1, 8, 8)
    target[:, :, :4] = 1
    return {
        "labelled": {"image": const(4.0), "target": target, "weight": torch.ones(2, 1, 8, 8)},
        "unlabelled": unl,
    }


@pytest.mark.parametrize(
    ("method", "options", "want"),
    [
        ("mean_teacher", {}, [("ema", "net", 1, False), ("model", "net", 2, True)]),
        ("fixmatch", {"teacher": "model"}, [("model", "net", 1, False), ("model", "net", 2, True)]),
        ("fixmatch", {"teacher": "ema"}, [("ema", "net", 1, False), ("model", "net", 2, True)]),
        (
            "fixmatch",
            {"teacher": "ema", "two_strong": True, "feature_dropout": 0.5},
            [("ema", "net", 1, False), ("model", "net", 2, True), ("model", "net", 3, True)]
            + [("model", "encoder", 1, True)],
        ),
    ],
)
def test_the_teacher_sees_the_weak_view_and_the_student_the_strong_ones(monkeypatch, method, options, want):
    """One training step's forward passes, in order: the labelled images (with gradient), the teacher on the
    weak view (no gradient; the EMA when it teaches), the student on each strong view, the feature-dropout
    view from the weak one. Swapping the views, or the teacher, changes the list."""
    from types import SimpleNamespace

    net = _Passes()
    with torch.no_grad():
        # logit = 1.5 x the tag: the teacher's weak-view p = 0.82 passes FixMatch's 0.8, the views disagree
        net.segmentation_head.weight.fill_(0.5)
        net.segmentation_head.bias.zero_()
    module = OnlineSemiModule(
        net,
        BCEDiceLoss(),
        method=method,
        confidence=0.8,
        cutmix_p=1.0,
        rampup_epochs=0,
        channels_last=False,
        **options,
    )
    if module.ema is not None:
        module.ema.module.name = "ema"
    module._trainer = SimpleNamespace(num_training_batches=1, global_step=0, global_rank=0)  # type: ignore[assignment]
    monkeypatch.setattr(module, "log", lambda *a, **k: None)
    _Passes.log.clear()
    batch = _tagged_batch(options.get("two_strong", False))
    loss = module.training_step(batch, 0)
    assert _Passes.log == [("model", "net", 4, True), *want]
    # and the unlabelled term is in the loss that is returned (full weight: no ramp-up)
    lab = batch["labelled"]
    sup = module.loss(net(lab["image"]), lab["target"], lab["weight"])
    unsup = float(module.unl_loss_mean.compute())
    assert unsup > 0.01 and float(loss) == pytest.approx(float(sup) + unsup, rel=1e-5)


def test_validation_and_export_use_the_ema_when_it_is_evaluated(tmp_path):
    """With evaluate: ema the validation Dice is the EMA's: here the EMA predicts everything and the trained
    network nothing, on masks that are half foreground."""
    from teachseg.training.steps import exported_network

    net = _Passes()
    module = OnlineSemiModule(net, BCEDiceLoss(), method="mean_teacher", evaluate="ema", channels_last=False)
    assert module.ema is not None and exported_network(module) is module.ema.module
    with torch.no_grad():
        net.segmentation_head.bias.fill_(-30.0)  # the trained network: nothing
        module.ema.module.segmentation_head.bias.fill_(30.0)  # the EMA: everything
    masks = [torch.zeros(16, 16, dtype=torch.uint8) for _ in range(2)]
    for m in masks:
        m[:8] = 1  # Dice of "everything" = 2 * 128 / (128 + 256) = 2/3; of "nothing" = 0
    batch = {"image": torch.zeros(2, 3, 8, 8), "mask": masks, "index": [0, 1]}
    loader = torch.utils.data.DataLoader([batch], batch_size=None, collate_fn=lambda b: b)
    trainer = L.Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    trainer.validate(module, dataloaders=loader, verbose=False)
    assert module.history[-1]["val_dice"] == pytest.approx(2 / 3, abs=1e-6)
    module.evaluate = "model"  # the same step validating the trained network scores 0: the test can tell
    trainer.validate(module, dataloaders=loader, verbose=False)
    assert module.history[-1]["val_dice"] == pytest.approx(0.0, abs=1e-6)


def test_unlabelled_weight_zero_equals_a_supervised_run_on_the_labelled_stream(synth_data, tmp_path):
    """The control is exactly a SegmentationModule trained on the online loader's labelled batches, in the
    same order (the unlabelled epoch's length): the same weights and batch-norm statistics, bit for bit."""
    from teachseg.training.module import SegmentationModule

    class LabelledStream(L.LightningDataModule):
        def __init__(self, dm: OnlineDataModule):
            super().__init__()
            self.dm = dm

        def train_dataloader(self):  # the online loader's labelled stream, built for this trainer
            self.dm.trainer = self.trainer
            return self.dm.train_dataloader().iterables["labelled"]

        def val_dataloader(self):
            return self.dm.val_dataloader()

    states = []
    for online in (True, False):
        torch.manual_seed(0)
        model = build_model("linknet", "resnet18", None)
        kw = {"epochs": 2, "channels_last": False}
        dm = _unlabelled_heavy(synth_data, "unlabelled")
        if online:
            module: SegmentationModule = OnlineSemiModule(
                model, BCEDiceLoss(), method="fixmatch", unlabelled_weight=0.0, seed=3, **kw
            )
            trainer = _fit(module, dm, tmp_path)  # type: ignore[arg-type]
        else:
            module = SegmentationModule(model, BCEDiceLoss(), **kw)
            trainer = _fit(module, LabelledStream(dm), tmp_path)  # type: ignore[arg-type]
        assert trainer.global_step == 12  # 6 steps an epoch: the unlabelled images' pass
        states.append(model.state_dict())
    assert any(k.endswith("running_mean") for k in states[0])
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key
