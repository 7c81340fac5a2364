"""Does mixed precision cost accuracy? bf16-mixed against fp32 (32-true) training on BUSI.

LinkNet-ResNet34 without pretrained weights is trained twice through ``teachseg.training.fit.train_model``
with the same seed, split (``prepare_data``: stratified, ``val_fraction`` 0.2), augmentation and epochs;
only ``train.precision`` differs. Each run selects its best epoch on validation Dice (mean per-image Dice
at native resolution), as every teachseg run does; the gap is between those two selected models. The
per-epoch curves and the final-epoch gap are printed as well.

Usage:
    python benchmarks/bench_precision.py [--quick] [--epochs N] [--image-size PX] [--threads N] [--data DIR]

The last line is ``dice_gap_bf16_vs_fp32: X.XXX`` (target: at most 0.02).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import BUSI, OUTPUT, busi_root, machine, set_threads  # noqa: E402

TARGET = 0.02
PRECISIONS = (("bf16", "bf16-mixed"), ("fp32", "32-true"))


class _Console:
    """The slice of rich's Console that ``train_model`` uses for its per-epoch line."""

    def __init__(self, tag: str):
        self.tag = tag

    def print(self, text: str, **_: Any) -> None:
        print(f"  [{self.tag}] {text}", flush=True)


def train_one(args: argparse.Namespace, root: Path, tag: str, precision: str, seed: int) -> dict[str, Any]:
    from teachseg.config import build_config
    from teachseg.training.fit import quiet_lightning, train_model
    from teachseg.training.prepare import prepare_data, prepare_run_dir, write_config
    from teachseg.training.spec import ModelSpec

    cfg = build_config(
        {
            "name": f"precision-{tag}-seed{seed}",
            "output_dir": str(OUTPUT),
            "seed": seed,
            "data": {
                "root": str(root),
                "image_size": args.image_size,
                "batch_size": args.batch_size,
                "val_fraction": 0.2,
                "test_fraction": 0.0,
                "num_workers": args.num_workers,
            },
            "model": {"arch": "linknet", "encoder": "resnet34", "encoder_weights": None},
            "train": {
                "stop": "epochs",  # every precision trains the same number of epochs
                "epochs": args.epochs,
                "precision": precision,
                "accelerator": "cpu",
                "progress_bar": False,
            },
        }
    )
    quiet_lightning()
    run_dir = prepare_run_dir(cfg.run_dir, resume=False, overwrite=True)
    write_config(run_dir, cfg)
    data = prepare_data(cfg, run_dir)
    started = time.perf_counter()
    summary = train_model(
        cfg, run_dir, data.train, data.val, spec=ModelSpec.teacher(cfg), console=_Console(tag)
    )
    assert summary is not None
    summary["curve"] = read_curve(run_dir / "metrics.csv")
    print(
        f"{tag} ({precision}): best val_dice {summary['val_dice']:.4f} at epoch {summary['best_epoch']}, "
        f"final {summary['curve'][-1]:.4f}, {len(data.train)} train / {len(data.val)} val images, "
        f"{time.perf_counter() - started:.0f}s, {summary['images_per_second']} images/s",
        flush=True,
    )
    return summary


def read_curve(path: Path) -> list[float]:
    import csv

    with path.open(encoding="utf-8") as fh:
        return [float(row["val_dice"]) for row in csv.DictReader(fh)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="128px, 12 epochs, one seed")
    parser.add_argument("--epochs", type=int, default=None, help="default 12 with --quick, else 30")
    parser.add_argument("--image-size", type=int, default=None, help="default 128 with --quick, else 256")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=None, help="default 42 with --quick, else 21 42 84"
    )
    parser.add_argument("--data", type=Path, default=None, help=f"BUSI folder (default {BUSI})")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: torch's, one per core); 1 is faster on a busy machine",
    )
    args = parser.parse_args(argv)
    set_threads(args.threads)
    args.epochs = args.epochs or (12 if args.quick else 30)
    args.seeds = args.seeds or ([42] if args.quick else [21, 42, 84])
    args.image_size = args.image_size or (128 if args.quick else 256)
    root = busi_root(args.data)
    print(
        f"data: {root}, {args.image_size}px, {args.epochs} epochs, batch {args.batch_size}, seeds {args.seeds}"
    )
    print(f"machine: {machine()}")

    gaps = []
    for seed in args.seeds:
        results = {tag: train_one(args, root, tag, precision, seed) for tag, precision in PRECISIONS}
        bf16, fp32 = results["bf16"], results["fp32"]
        print(f"seed {seed} val_dice per epoch:")
        for tag, summary in results.items():
            print(f"  {tag:>4}: " + " ".join(f"{v:.3f}" for v in summary["curve"]))
        gaps.append(bf16["val_dice"] - fp32["val_dice"])
        print(
            f"seed {seed}: selected-model val_dice bf16 {bf16['val_dice']:.4f}, fp32 {fp32['val_dice']:.4f}, "
            f"gap {gaps[-1]:+.4f}, final-epoch gap {bf16['curve'][-1] - fp32['curve'][-1]:+.4f}"
        )
    # Signed gaps averaged over seeds: run-to-run noise of either precision cancels, a bias of bf16 does not.
    gap = abs(sum(gaps) / len(gaps))
    print(f"target: <= {TARGET} ({'meets' if gap <= TARGET else 'MISSES'})")
    print(f"dice_gap_bf16_vs_fp32: {gap:.3f}")


if __name__ == "__main__":
    main()
