"""Training throughput: teachseg's real training path against a plain fp32 PyTorch loop with smp.

teachseg side: the pieces ``teachseg.training.fit.train_model`` assembles (``SegmentationDataset`` with the
in-RAM cache, ``JointTransform`` + ``Normalise``, ``SegDataModule`` with the configured workers,
``SegmentationModule`` in channels_last, and the Trainer of ``build_trainer`` with precision
``resolve_precision("auto", "cpu")``, i.e. bf16-mixed), timed by a Lightning callback from the end of one
step to the end of the next, so batch loading and Lightning's own work are included.

Baseline: what a user writes from smp's examples: a Dataset that reads each PNG with Pillow, resizes to the
training size and flips at random, a ``DataLoader`` with ``os.cpu_count()`` workers,
``smp.Linknet("resnet34", encoder_weights=None)`` in fp32 (contiguous), Adam, BCE + smp's ``DiceLoss``.

Both sides see the same images, batch size and input size; their steps alternate in one process (one
baseline step runs inside each teachseg ``on_train_batch_end``, outside the teachseg timing), so load from
elsewhere on a shared machine hits both alike. Figures are medians after warm-up steps.

Usage:
    python benchmarks/bench_train.py [--steps 8] [--warmup 3] [--batch-size 8] [--threads N] [--data DIR]

The last line is ``train_speedup_vs_plain_fp32: X.XX`` (target: at least 2.5).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import BUSI, OUTPUT, fail, machine, median, pick, set_threads, spread  # noqa: E402

TARGET = 2.5


# ---------------------------------------------------------------------------------------------- baseline


class PlainDataset:
    """The Dataset of smp's examples: Pillow read, resize, random flip, ImageNet normalisation."""

    def __init__(self, pairs: list[tuple[Path, Path]], size: int):
        self.pairs = pairs
        self.size = size

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int):
        import numpy as np
        import torch
        from PIL import Image

        image_path, mask_path = self.pairs[i]
        image = Image.open(image_path).convert("RGB").resize((self.size, self.size), Image.BILINEAR)
        mask = Image.open(mask_path).convert("L").resize((self.size, self.size), Image.NEAREST)
        image = np.asarray(image, dtype=np.float32) / 255.0
        mask = (np.asarray(mask) > 0).astype(np.float32)
        if np.random.rand() < 0.5:
            image, mask = image[:, ::-1], mask[:, ::-1]
        image = (image - np.array([0.485, 0.456, 0.406], np.float32)) / np.array(
            [0.229, 0.224, 0.225], np.float32
        )
        return torch.from_numpy(image.transpose(2, 0, 1).copy()), torch.from_numpy(mask[None].copy())


class PlainLoop:
    """A plain fp32 training loop; :meth:`step` runs one batch and returns its wall time."""

    def __init__(self, pairs: list[tuple[Path, Path]], size: int, batch_size: int, seed: int):
        import segmentation_models_pytorch as smp
        import torch
        from torch.utils.data import DataLoader

        torch.manual_seed(seed)
        self.model = smp.Linknet("resnet34", encoder_weights=None)
        self.model.train()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.dice = smp.losses.DiceLoss(smp.losses.BINARY_MODE, from_logits=True)
        self.bce = torch.nn.BCEWithLogitsLoss()
        self.loader = DataLoader(
            PlainDataset(pairs, size),
            batch_size=batch_size,
            shuffle=True,
            num_workers=os.cpu_count() or 0,
            drop_last=True,
        )
        self._batches = None
        self.last_loading = 0.0

    def step(self) -> float:
        import torch

        started = time.perf_counter()
        if self._batches is None:
            self._batches = iter(self.loader)
        try:
            images, masks = next(self._batches)
        except StopIteration:
            self._batches = iter(self.loader)
            images, masks = next(self._batches)
        self.last_loading = time.perf_counter() - started
        with torch.enable_grad(), torch.autocast("cpu", enabled=False):
            logits = self.model(images)
            loss = self.dice(logits, masks) + self.bce(logits, masks)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        return time.perf_counter() - started


# ---------------------------------------------------------------------------------------------- teachseg


def make_interleaver(plain: PlainLoop, total: int):
    import lightning as L

    class Interleave(L.Callback):
        """Times each teachseg step (end of the previous step to end of this one, loading included), then
        runs one baseline step outside that window."""

        def __init__(self) -> None:
            self.teachseg: list[float] = []
            self.loading: list[float] = []
            self.plain: list[float] = []
            self._mark = 0.0

        def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            self._mark = time.perf_counter()

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            self.loading.append(time.perf_counter() - self._mark)

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self.teachseg.append(time.perf_counter() - self._mark)
            self.plain.append(plain.step())
            i = len(self.teachseg)
            print(
                f"  step {i:>2}/{total}  teachseg {self.teachseg[-1]:6.2f}s (waiting for the batch "
                f"{self.loading[-1]:5.2f}s)  plain fp32 {self.plain[-1]:6.2f}s (batch {plain.last_loading:5.2f}s)",
                flush=True,
            )
            self._mark = time.perf_counter()

    return Interleave()


def run(args: argparse.Namespace) -> float:
    import torch

    from teachseg.config import build_config
    from teachseg.data.datasets import EvalDataset, Record, SegmentationDataset
    from teachseg.data.discover import discover
    from teachseg.data.transforms import JointTransform, Normalise
    from teachseg.losses import BCEDiceLoss
    from teachseg.models import IMAGENET_MEAN, IMAGENET_STD, build_model
    from teachseg.training.datamodule import SegDataModule
    from teachseg.training.fit import build_trainer, resolve_precision
    from teachseg.training.module import SegmentationModule

    total = args.warmup + args.steps
    n_images = total * args.batch_size
    root = find_data(args, n_images)
    samples = [s for s in discover(root).labelled]
    if len(samples) < n_images:
        fail(f"{root} has {len(samples)} labelled images; this run needs {n_images} (lower --steps)")
    samples = pick(samples, n_images, seed=args.seed)
    print(f"data: {root} ({len(samples)} images), {args.image_size}px, batch {args.batch_size}")
    print(f"machine: {machine()}")

    cfg = build_config(
        {
            "name": "bench-train",
            "output_dir": str(OUTPUT),
            "seed": args.seed,
            "data": {"image_size": args.image_size, "batch_size": args.batch_size},
            "model": {"arch": "linknet", "encoder": "resnet34", "encoder_weights": None},
            "train": {"accelerator": "cpu", "epochs": 1, "limit_train_batches": total, "progress_bar": False},
        }
    )
    precision = resolve_precision(cfg.train.precision, "cpu")
    print(
        f"teachseg: precision {precision}, channels_last {cfg.train.channels_last}, workers {cfg.data.num_workers}"
    )
    run_dir = cfg.run_dir
    shutil.rmtree(run_dir, ignore_errors=True)

    records = [Record(id=s.id, image=s.image, masks=s.masks, cls=s.cls) for s in samples]
    torch.manual_seed(cfg.seed)
    model = build_model("linknet", "resnet34", None)
    norm = Normalise(IMAGENET_MEAN, IMAGENET_STD)
    d = cfg.data
    train_ds = SegmentationDataset(
        records,
        d.image_size,
        JointTransform(d.image_size, d.augment),
        norm,
        seed=cfg.seed,
        cache=d.cache_images,
    )
    started = time.perf_counter()
    if d.cache_images:
        train_ds.preload()
    print(
        f"teachseg: decoded {len(train_ds)} images into the cache in {time.perf_counter() - started:.1f}s (once per run)"
    )
    val_ds = EvalDataset(records[:1], d.image_size, norm)
    loss = BCEDiceLoss(
        cfg.loss.bce_weight, cfg.loss.dice_weight, cfg.loss.dice_smooth, cfg.loss.dice_per_image
    )
    module = SegmentationModule(model, loss, lr=cfg.train.lr, epochs=1, channels_last=cfg.train.channels_last)
    dm = SegDataModule(train_ds, val_ds, d.batch_size, d.num_workers, cfg.seed)

    pairs = [(s.image, s.masks[0]) for s in samples]
    plain = PlainLoop(pairs, args.image_size, args.batch_size, cfg.seed)
    timer = make_interleaver(plain, total)
    trainer = build_trainer(cfg, run_dir, 1, [timer])
    trainer.limit_val_batches = 0  # the benchmark times training steps only
    trainer.fit(module, datamodule=dm)
    shutil.rmtree(run_dir, ignore_errors=True)

    teach, base = timer.teachseg[args.warmup :], timer.plain[args.warmup :]
    if len(teach) < 1 or len(base) < 1:
        fail("no timed steps were recorded (raise --steps)")
    print(f"teachseg step: {spread(teach)}")
    print(f"plain fp32 step: {spread(base)}")
    teach_ips = args.batch_size / median(teach)
    base_ips = args.batch_size / median(base)
    print(f"teachseg_images_per_s: {teach_ips:.2f}")
    print(f"plain_fp32_images_per_s: {base_ips:.2f}")
    return teach_ips / base_ips


def find_data(args: argparse.Namespace, n_images: int) -> Path:
    if args.data is not None:
        if not args.data.is_dir():
            fail(f"--data {args.data} is not a folder")
        return args.data
    if BUSI.is_dir():
        return BUSI
    from teachseg.data.synth import generate

    out = OUTPUT / "synth-train"
    print(f"BUSI not found at {BUSI}; using {n_images} synthetic 512px tiles in {out}")
    return generate(out, n_labelled=n_images, n_unlabelled=0, size=512, seed=0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=8, help="timed steps per side (after warm-up)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per side")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument(
        "--data", type=Path, default=None, help=f"dataset folder (default {BUSI}, else synthetic)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: torch's, one per core); 1 is steadier on a busy machine",
    )
    args = parser.parse_args(argv)
    set_threads(args.threads)
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be at least 1 and --warmup at least 0")
    ratio = run(args)
    status = "meets" if ratio >= TARGET else "MISSES"
    print(f"target: >= {TARGET} ({status})")
    print(f"train_speedup_vs_plain_fp32: {ratio:.2f}")


if __name__ == "__main__":
    main()
