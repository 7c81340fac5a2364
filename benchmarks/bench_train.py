"""Training throughput: teachseg's real training path against two plain PyTorch loops with smp.

teachseg side: ``teachseg.training.fit.train_model`` itself (in-RAM cache of decoded images,
``JointTransform`` augmentation, ``SegDataModule`` with the configured workers, channels_last, and the
Trainer with ``train.precision: auto``: bf16-mixed on CPUs with native bf16, else fp32), timed by a Lightning callback from the end of
one step to the end of the next, so batch loading and Lightning's own work are included. The callback is
attached through Lightning's public ``Trainer(callbacks=...)`` argument, so the benchmark does not depend on
how teachseg builds its loss, module or precision policy.

Baselines, fed the same images at the same size and batch size:

* plain fp32 loop: what a user who caches writes from smp's examples: every image and mask decoded once into
  RAM (Pillow, extra lesion masks OR-merged), a Dataset that resizes the cached arrays and flips at random, a
  ``DataLoader`` with ``os.cpu_count()`` workers, ``smp.Linknet("resnet34", encoder_weights=None)`` in fp32
  (contiguous), AdamW, BCE + smp's ``DiceLoss``;
* tuned loop: the same cache, loader, model, optimiser and loss, hand-tuned: model and input in
  channels_last, forward under ``torch.autocast(bfloat16)`` where the CPU runs bf16 natively (else fp32,
  which is faster there: bf16 autocast measured 2.1x slower per training step on a CPU without
  AVX512-BF16/AMX), the loss on fp32 logits. ``--tuned-precision bf16`` forces bf16.

``train_speedup_vs_plain_fp32`` (teachseg images/s over the plain fp32 loop's) says what a user gains by
switching; ``train_overhead_vs_tuned_loop`` (teachseg step time over the tuned loop's) says what teachseg's
machinery (augmentation, Lightning, metrics) costs against the same optimisations written by hand.

The three loops' steps alternate in one process (one step of each baseline runs inside each teachseg
``on_train_batch_end``, outside the teachseg timing), so load from elsewhere on a shared machine hits all
alike. Figures are medians after warm-up steps.

Usage:
    python benchmarks/bench_train.py [--steps 16] [--warmup 10] [--batch-size 8] [--threads N] [--data DIR]
    python benchmarks/bench_train.py --smoke     # 2 timed steps of batch 2 at 64 px: checks the script runs

Prints ``train_overhead_vs_tuned_loop: X.XX`` (goal: at most 1.10) and, last,
``train_speedup_vs_plain_fp32: X.XX`` (target: at least 2.5).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from torch.utils.data import Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import BUSI, OUTPUT, fail, machine, median, pick, set_threads, spread  # noqa: E402

TARGET = 2.5
OVERHEAD_GOAL = 1.10
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


# ---------------------------------------------------------------------------------------------- baselines


class CachedDataset(Dataset):
    """Images and masks decoded once into RAM (before the workers fork, so they share them), then resized,
    flipped at random and normalised per item: the Dataset a user who caches writes."""

    def __init__(self, pairs: list[tuple[Path, tuple[Path, ...]]], size: int):
        import numpy as np
        from PIL import Image

        self.size = size
        self.images: list[np.ndarray] = []
        self.masks: list[np.ndarray] = []
        for image_path, mask_paths in pairs:
            image = np.asarray(Image.open(image_path).convert("RGB"))
            mask = np.zeros(image.shape[:2], bool)
            for path in mask_paths:
                mask |= np.asarray(Image.open(path).convert("L")) > 0
            self.images.append(image)
            self.masks.append(mask.astype(np.uint8) * 255)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        import numpy as np
        import torch
        from PIL import Image

        size = (self.size, self.size)
        image = (
            np.asarray(Image.fromarray(self.images[i]).resize(size, Image.Resampling.BILINEAR), np.float32)
            / 255
        )
        mask = (np.asarray(Image.fromarray(self.masks[i]).resize(size, Image.Resampling.NEAREST)) > 0).astype(
            np.float32
        )
        if np.random.rand() < 0.5:
            image, mask = image[:, ::-1], mask[:, ::-1]
        image = (image - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
        return torch.from_numpy(image.transpose(2, 0, 1).copy()), torch.from_numpy(mask[None].copy())


class PlainLoop:
    """A plain training loop over the cached images; :meth:`step` runs one batch and returns its wall time.

    ``tuned=False``: fp32, contiguous tensors. ``tuned=True``: model and input in channels_last, forward under
    bf16 autocast when ``bf16``, loss on fp32 logits.
    """

    def __init__(
        self,
        dataset: CachedDataset,
        batch_size: int,
        seed: int,
        tuned: bool,
        bf16: bool = False,
        device: str = "cpu",
    ):
        import segmentation_models_pytorch as smp
        import torch
        from torch.utils.data import DataLoader

        torch.manual_seed(seed)
        self.tuned = tuned
        self.bf16 = bf16
        self.device = torch.device(device)
        self.model = smp.Linknet("resnet34", encoder_weights=None).to(self.device)
        if tuned:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.model.train()
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-3, weight_decay=1e-4)
        self.dice = smp.losses.DiceLoss(smp.losses.BINARY_MODE, from_logits=True)
        self.bce = torch.nn.BCEWithLogitsLoss()
        self.loader = DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=True,
            num_workers=os.cpu_count() or 0,
            drop_last=True,
            persistent_workers=True,
            pin_memory=self.device.type == "cuda",
        )
        self._batches: Iterator | None = None
        self.last_loading = 0.0

    def _next_batch(self):
        if self._batches is None:
            self._batches = iter(self.loader)
        try:
            return next(self._batches)
        except StopIteration:
            self._batches = iter(self.loader)
            return next(self._batches)

    def step(self) -> float:
        import torch

        started = time.perf_counter()
        images, masks = self._next_batch()
        images = images.to(self.device, non_blocking=True)
        masks = masks.to(self.device, non_blocking=True)
        self.last_loading = time.perf_counter() - started
        kind = self.device.type
        with torch.enable_grad():
            if self.tuned:
                images = images.contiguous(memory_format=torch.channels_last)
                with torch.autocast(kind, dtype=torch.bfloat16, enabled=self.bf16):
                    logits = self.model(images)
                logits = logits.float()
            else:
                with torch.autocast(kind, enabled=False):  # callbacks may run inside Lightning's autocast
                    logits = self.model(images)
            loss = self.dice(logits, masks) + self.bce(logits, masks)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        _sync(self.device.type)
        return time.perf_counter() - started


# ---------------------------------------------------------------------------------------------- teachseg


def _sync(kind: str) -> None:
    """Wait for queued GPU work, so a wall-clock step time covers the kernels it launched."""
    if kind == "cuda":
        import torch

        torch.cuda.synchronize()


def make_interleaver(plain: PlainLoop, tuned: PlainLoop, total: int):
    import lightning as L
    import torch

    class Interleave(L.Callback):
        """Times each teachseg step (end of the previous step to end of this one, loading included), then
        runs one step of each baseline outside that window."""

        def __init__(self) -> None:
            self.teachseg: list[float] = []
            self.loading: list[float] = []
            self.plain: list[float] = []
            self.tuned: list[float] = []
            self.precision = "?"
            self.channels_last: bool | None = None
            self._mark = 0.0

        def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            self.precision = str(trainer.precision)
            convs = [p for p in pl_module.parameters() if p.dim() == 4]
            self.channels_last = bool(convs) and all(
                p.is_contiguous(memory_format=torch.channels_last) for p in convs
            )
            print(f"teachseg: precision {self.precision}, channels_last weights {self.channels_last}")
            _sync(pl_module.device.type)
            self._mark = time.perf_counter()

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            self.loading.append(time.perf_counter() - self._mark)

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            _sync(pl_module.device.type)
            self.teachseg.append(time.perf_counter() - self._mark)
            self.plain.append(plain.step())
            plain_loading = plain.last_loading
            self.tuned.append(tuned.step())
            print(
                f"  step {len(self.teachseg):>2}/{total}  teachseg {self.teachseg[-1]:6.2f}s "
                f"(batch wait {self.loading[-1]:5.2f}s)  plain fp32 {self.plain[-1]:6.2f}s "
                f"(batch {plain_loading:5.2f}s)  tuned {self.tuned[-1]:6.2f}s (batch {tuned.last_loading:5.2f}s)",
                flush=True,
            )
            self._mark = time.perf_counter()

    return Interleave()


@contextlib.contextmanager
def extra_trainer_callback(callback) -> Iterator[None]:
    """Add ``callback`` to every ``lightning.Trainer`` built inside the block (through its public
    ``callbacks`` argument), whatever teachseg passes itself."""
    import lightning as L

    original = L.Trainer.__init__

    def init(self, *args, callbacks=None, **kwargs):
        if callbacks is None:
            callbacks = []
        elif not isinstance(callbacks, list):
            callbacks = [callbacks]
        original(self, *args, callbacks=[*callbacks, callback], **kwargs)

    L.Trainer.__init__ = init  # type: ignore[method-assign]
    try:
        yield
    finally:
        L.Trainer.__init__ = original  # type: ignore[method-assign]


def run(args: argparse.Namespace) -> tuple[float, float]:
    """Returns (teachseg speed-up over the plain fp32 loop, teachseg step time over the tuned loop's)."""
    import torch

    from teachseg.config import build_config
    from teachseg.data.datasets import Record
    from teachseg.data.discover import discover
    from teachseg.training.fit import train_model
    from teachseg.training.spec import ModelSpec

    device = (
        "cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu"
    )
    if device == "cuda" and not torch.cuda.is_available():
        fail("--device cuda: no CUDA GPU is available")
    total = args.warmup + args.steps
    n_images = total * args.batch_size
    root = find_data(args, n_images)
    samples = list(discover(root).labelled)
    if len(samples) < n_images:
        fail(f"{root} has {len(samples)} labelled images; this run needs {n_images} (lower --steps)")
    samples = pick(samples, n_images, seed=args.seed)
    print(f"data: {root} ({len(samples)} images), {args.image_size}px, batch {args.batch_size}")
    print(f"machine: {machine()}")
    if device == "cuda":
        print(
            f"device: {torch.cuda.get_device_name()} (every loop on the GPU; steps timed after synchronising)"
        )

    cfg = build_config(
        {
            "name": "bench-train",
            "output_dir": str(OUTPUT),
            "seed": args.seed,
            "data": {"image_size": args.image_size, "batch_size": args.batch_size},
            "model": {"arch": "linknet", "encoder": "resnet34", "encoder_weights": None},
            "train": {
                "accelerator": "gpu" if device == "cuda" else "cpu",
                "stop": "epochs",  # a throughput measurement: one epoch of `total` batches
                "epochs": 1,
                "limit_train_batches": total,
                "progress_bar": False,
            },
        }
    )
    print(
        f"teachseg: train.precision {cfg.train.precision}, channels_last {cfg.train.channels_last}, "
        f"workers {cfg.data.num_workers}, cache {cfg.data.cache_images}"
    )
    run_dir = cfg.run_dir
    shutil.rmtree(run_dir, ignore_errors=True)
    records = [Record(id=s.id, image=s.image, masks=tuple(s.masks), cls=s.cls) for s in samples]

    started = time.perf_counter()
    cached = CachedDataset([(s.image, tuple(s.masks)) for s in samples], args.image_size)
    print(f"baselines: decoded {len(cached)} images into RAM in {time.perf_counter() - started:.1f}s (once)")
    plain = PlainLoop(cached, args.batch_size, args.seed, tuned=False, device=device)
    from teachseg.precision import Precision, resolve

    tuned_bf16 = (
        args.tuned_precision == "bf16"
        or args.tuned_precision == "auto"
        and resolve(Precision.AUTO, device) == Precision.BF16
    )
    print(f"tuned loop: channels_last, {'bf16 autocast' if tuned_bf16 else 'fp32'}")
    tuned = PlainLoop(cached, args.batch_size, args.seed, tuned=True, bf16=tuned_bf16, device=device)
    timer = make_interleaver(plain, tuned, total)
    with extra_trainer_callback(timer):
        # One validation image: the benchmark times training steps; validation runs once, after them.
        train_model(cfg, run_dir, records, records[:1], spec=ModelSpec.teacher(cfg))
    shutil.rmtree(run_dir, ignore_errors=True)

    teach = timer.teachseg[args.warmup :]
    base, fast = timer.plain[args.warmup :], timer.tuned[args.warmup :]
    if not teach or not base or not fast:
        fail("no timed steps were recorded (raise --steps, or the Trainer hook did not attach)")
    print(f"teachseg step: {spread(teach)}")
    print(f"plain fp32 step: {spread(base)}")
    print(f"tuned ({'bf16' if tuned_bf16 else 'fp32'} + channels_last) step: {spread(fast)}")
    teach_ips = args.batch_size / median(teach)
    print(f"teachseg_images_per_s: {teach_ips:.2f}")
    print(f"plain_fp32_images_per_s: {args.batch_size / median(base):.2f}")
    print(f"tuned_loop_images_per_s: {args.batch_size / median(fast):.2f}")
    print(f"tuned_loop_speedup_vs_plain_fp32: {median(base) / median(fast):.2f}")
    return median(base) / median(teach), median(teach) / median(fast)


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
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=None, help="timed steps per loop, after warm-up (16)")
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="untimed steps per loop (10: the plain fp32 loop's step time still falls for about 10 steps on a CPU)",
    )
    parser.add_argument("--batch-size", type=int, default=None, help="(8)")
    parser.add_argument("--image-size", type=int, default=None, help="(256)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="2 timed steps after 1 warm-up, batch 2, 64 px: checks the script end to end; figures are meaningless",
    )
    parser.add_argument(
        "--data", type=Path, default=None, help=f"dataset folder (default {BUSI}, else synthetic)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default="cpu",
        help="where all three loops run (auto: the GPU when there is one)",
    )
    parser.add_argument(
        "--tuned-precision",
        choices=["auto", "bf16", "fp32"],
        default="auto",
        help="the tuned loop's precision (auto: bf16 where the CPU runs it natively, else fp32)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: torch's, one per core); 1 is steadier on a busy machine",
    )
    args = parser.parse_args(argv)
    defaults = (2, 1, 2, 64) if args.smoke else (16, 10, 8, 256)
    for name, value in zip(("steps", "warmup", "batch_size", "image_size"), defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, value)
    set_threads(args.threads)
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be at least 1 and --warmup at least 0")
    speedup, overhead = run(args)
    if args.smoke:
        print("smoke run: too few steps and too small an input for the figures to mean anything")
    print(f"goal: overhead <= {OVERHEAD_GOAL} ({'meets' if overhead <= OVERHEAD_GOAL else 'MISSES'})")
    print(f"train_overhead_vs_tuned_loop: {overhead:.2f}")
    print(f"target: speed-up >= {TARGET} ({'meets' if speedup >= TARGET else 'MISSES'})")
    print(f"train_speedup_vs_plain_fp32: {speedup:.2f}")


if __name__ == "__main__":
    main()
