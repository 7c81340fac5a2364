"""Peak memory of one training step per method: supervised, Mean Teacher, FixMatch (and with UniMatch's options).

An online step holds the labelled batch plus two or three views of the unlabelled one (weak, strong,
optionally a second strong view and the feature-dropout pass), and Mean Teacher / FixMatch with an EMA teacher
hold a second copy of the weights. This measures the peak of a few real training steps (LinkNet-ResNet34,
``--size`` px, batch ``--batch``, synthetic tiles) in a fresh process per method: CUDA's
``max_memory_allocated`` on a GPU, else the growth of the process's peak resident memory over the model's
baseline on CPU (activations and gradients are what grows).

    python benchmarks/bench_ssl_memory.py                  # 256 px, batch 8
    python benchmarks/bench_ssl_memory.py --size 128 --batch 4

Prints one line per method and, last, ``online_peak_over_supervised: X.XX`` (the largest online peak divided
by supervised's).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VARIANTS: dict[str, dict[str, Any]] = {
    "supervised": {},
    "mean_teacher": {"method": "mean_teacher"},
    "fixmatch": {"method": "fixmatch"},
    "fixmatch+unimatch": {"method": "fixmatch", "feature_dropout": 0.5, "two_strong": True, "teacher": "ema"},
}


def child(args: argparse.Namespace) -> None:
    """Run a few steps of one variant and print its peak memory (bytes) as JSON."""
    import resource

    import lightning as L
    import torch

    from teachseg.config import AugmentConfig
    from teachseg.data.datasets import EvalDataset, Record, SegmentationDataset
    from teachseg.data.strong import strong_pipeline
    from teachseg.data.synth import generate
    from teachseg.data.transforms import JointTransform, Normalise
    from teachseg.data.views import UnlabelledViews
    from teachseg.losses import BCEDiceLoss
    from teachseg.models import IMAGENET_MEAN, IMAGENET_STD, build_model
    from teachseg.selftrain.online import OnlineSemiModule
    from teachseg.selftrain.online_data import OnlineDataModule
    from teachseg.training.datamodule import SegDataModule
    from teachseg.training.module import SegmentationModule

    options = dict(VARIANTS[args.variant])
    method = options.pop("method", None)
    root = generate(
        Path(args.tmp) / "data",
        n_labelled=2 * args.batch,
        n_unlabelled=2 * args.batch,
        size=args.size,
        seed=0,
    )
    lab = [Record(p.stem, p, (root / "masks" / p.name,)) for p in sorted((root / "images").glob("*.png"))]
    unl = [Record(p.stem, p) for p in sorted((root / "unlabelled").glob("*.png"))]
    norm, aug = Normalise(IMAGENET_MEAN, IMAGENET_STD), AugmentConfig()
    train = SegmentationDataset(lab, args.size, JointTransform(args.size, aug), norm)
    val = EvalDataset(lab[:2], args.size, norm)
    gpu = torch.cuda.is_available()
    model = build_model("linknet", "resnet34", None)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if method is None:
        module: L.LightningModule = SegmentationModule(model, BCEDiceLoss(), epochs=1)
        dm: L.LightningDataModule = SegDataModule(train, val, args.batch, 0, 0)
    else:
        module = OnlineSemiModule(model, BCEDiceLoss(), method=method, epochs=1, confidence=0.9, **options)
        views = UnlabelledViews(
            unl,
            args.size,
            JointTransform(args.size, aug),
            norm,
            strong_pipeline("he"),
            0,
            two_strong=bool(options.get("two_strong")),
        )
        dm = OnlineDataModule(train, views, val, batch_size=args.batch)
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="gpu" if gpu else "cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        use_distributed_sampler=False,
        precision="bf16-mixed" if gpu else "32-true",
    )
    trainer.fit(module, datamodule=dm)
    if gpu:
        peak = torch.cuda.max_memory_allocated()
        kind = "cuda max_memory_allocated"
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base_rss
        kind = "CPU peak RSS growth"
    print(json.dumps({"variant": args.variant, "peak": peak, "kind": kind}))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--variant", choices=list(VARIANTS), help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.variant:
        child(args)
        return 0
    peaks: dict[str, float] = {}
    for variant in VARIANTS:
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--variant",
                    variant,
                    "--tmp",
                    tmp,
                    "--size",
                    str(args.size),
                    "--batch",
                    str(args.batch),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
        if out.returncode != 0 or not lines:
            print(out.stderr[-2000:], file=sys.stderr)
            raise SystemExit(f"{variant} failed")
        r = json.loads(lines[-1])
        peaks[variant] = r["peak"]
        print(
            f"{variant}: {r['peak'] / 2**30:.2f} GiB ({r['kind']}, {args.size} px, batch {args.batch})",
            flush=True,
        )
    worst = max(v for k, v in peaks.items() if k != "supervised")
    print(f"online_peak_over_supervised: {worst / peaks['supervised']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
