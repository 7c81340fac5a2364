"""Does self-training help on real data? BUSI with 25% of the training masks.

Protocol (per seed): hold out a seeded, stratified test split (20%), keep masks for 25% of the remaining
training images, LinkNet-ResNet34 without pretrained weights, the same epochs for teacher and student.
Prints, per seed, the Teacher's and the Student's validation and test Dice, a fully supervised model's test
Dice (all training masks) as the ceiling, and last the mean Student-minus-Teacher test Dice over seeds.

    python benchmarks/bench_selftrain_busi.py --quick     # one seed, 128 px (< 40 min on 2 CPU cores)
    python benchmarks/bench_selftrain_busi.py             # seeds 21, 42, 84 at 256 px
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUSI = ROOT.parent / "shared" / "data" / "busi"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one seed (42), 128 px, fewer epochs")
    ap.add_argument("--data", type=Path, default=BUSI)
    ap.add_argument("--seeds", type=int, nargs="*", default=None)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--image-size", type=int, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "bench-output" / "selftrain-busi")
    ap.add_argument("--no-ceiling", action="store_true", help="skip the fully supervised ceiling")
    ap.add_argument(
        "--scratch", action="store_true", help="student from scratch (the study) instead of the teacher"
    )
    ap.add_argument("--confidence", default="linear", choices=["linear", "threshold", "none"])
    ap.add_argument("--pseudo-weight", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--tag", default="", help="suffix of the run folders")
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"BUSI not found at {args.data}; pass --data DIR", file=sys.stderr)
        return 2

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from teachseg.config import build_config
    from teachseg.selftrain.loop import run_selftrain
    from teachseg.training.fit import train_model
    from teachseg.training.prepare import prepare_data

    seeds = args.seeds or ([42] if args.quick else [21, 42, 84])
    epochs = args.epochs or (25 if args.quick else 40)
    size = args.image_size or (128 if args.quick else 256)
    gains, rows = [], []
    for seed in seeds:
        base = {
            "seed": seed,
            "output_dir": str(args.out),
            "data": {
                "root": str(args.data),
                "image_size": size,
                "val_fraction": 0.1,
                "test_fraction": 0.2,
                "label_fraction": 0.25,
                "batch_size": 8,
                "num_workers": 0,
            },
            "model": {"arch": "linknet", "encoder": "resnet34", "encoder_weights": None},
            "train": {"epochs": epochs, "lr": 1e-3},
            "selftrain": {
                "max_generations": 1,
                "tta": True,
                "confidence": {"mode": args.confidence, "threshold": 0.9},
                "pseudo_weight": args.pseudo_weight,
                "student": {"strong_augment": True, "init_from_teacher": not args.scratch},
            },
        }
        t0 = time.perf_counter()
        cfg = build_config({**base, "name": f"selftrain{args.tag}-seed{seed}"}, "bench")
        run_dir = cfg.run_dir
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        summary = run_selftrain(cfg, run_dir, console=None)
        teacher = summary["teacher"]
        student = summary["best_student"]
        ceiling = None
        if not args.no_ceiling:
            full = build_config(
                {
                    **base,
                    "name": f"supervised{args.tag}-seed{seed}",
                    "data": {**base["data"], "label_fraction": 1.0},
                },
                "bench",
            )
            shutil.rmtree(full.run_dir, ignore_errors=True)
            full.run_dir.mkdir(parents=True)
            data = prepare_data(full, full.run_dir)
            ceiling = train_model(full, full.run_dir, data.train, data.val, data.test)
        lineage_pseudo = None
        import json

        lineage = json.loads((run_dir / "lineage.json").read_text())
        if len(lineage["generations"]) > 1:
            lineage_pseudo = lineage["generations"][1]["pseudo"]
        gain = student["test_dice"] - teacher["test_dice"]
        gains.append(gain)
        rows.append((seed, teacher, student, ceiling, lineage_pseudo, time.perf_counter() - t0))
        print(
            f"seed {seed}: teacher val {teacher['val_dice']:.4f} test {teacher['test_dice']:.4f} | "
            f"student val {student['val_dice']:.4f} test {student['test_dice']:.4f} | "
            f"supervised test {ceiling['test_dice'] if ceiling else float('nan'):.4f} | "
            f"gain {gain:+.4f} | pseudo {lineage_pseudo} | {time.perf_counter() - t0:.0f} s",
            flush=True,
        )
    print(
        f"settings: image_size {size}, epochs {epochs}, seeds {seeds}, label_fraction 0.25, test_fraction 0.2, "
        f"student from {'scratch' if args.scratch else 'the teacher'}, confidence {args.confidence}, "
        f"pseudo_weight {args.pseudo_weight}"
    )
    if len(gains) > 1:
        print(
            f"gain per seed: {', '.join(f'{g:+.4f}' for g in gains)}; median {statistics.median(gains):+.4f}"
        )
    print(f"selftrain_test_dice_gain: {statistics.mean(gains):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
