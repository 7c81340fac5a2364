"""Does self-training help on real data, beyond the extra training it brings? BUSI with 25% of the masks.

Protocol, per seed: a seeded, stratified test split (20%) and validation split (10%); masks kept for 25% of
the remaining training images, the rest are the unlabelled pool; LinkNet-ResNet34 without pretrained weights;
the same epochs for every model. Arms:

* Teacher: trained on the labelled images (generation 0 of ``run_selftrain``);
* Student: one generation of self-training from that Teacher (soft pseudo-labels with flip TTA,
  confidence-weighted, Noisy-Student augmentation), for each candidate recipe (``--recipes``);
* control: the chosen recipe's Student with ``selftrain.pseudo_weight=0``: the same initialisation, data
  order and epochs, with no signal from the pseudo-labels (extra training only). It reuses the same Teacher
  (``selftrain.teacher_model`` pointing at the Teacher's model folder);
* supervised ceiling: the same model and epochs with every training mask.

When several recipes are given, the one used for the figures is chosen on the Students' mean **validation**
Dice over seeds, and those validation figures are printed; test Dice is read only after the choice.

Statistics: the unit is the test image. Each image's paired difference (Student minus Teacher, Student minus
control) is averaged over the seeds in which it is a test image; a 95% percentile bootstrap over images
(10,000 resamples) of the seed-weighted mean of those differences gives the interval. The point estimate is
the mean over seeds of the per-seed mean differences (the same number when every seed has as many test
images).

    python benchmarks/bench_selftrain_busi.py --quick     # seed 42, 128 px, 25 epochs (est. 30+ min, 2 idle cores)
    python benchmarks/bench_selftrain_busi.py             # seeds 21, 42, 84 at 256 px, 40 epochs
    python benchmarks/bench_selftrain_busi.py --smoke     # 32 images, 64 px, 1 epoch: checks the script runs

Prints ``selftrain_gain_over_control: X.XXX [lo, hi]`` and, last, ``selftrain_test_dice_gain: X.XXX [lo, hi]``.
Run folders are kept in ``bench-output/selftrain-busi/`` (replaced on each run unless ``--reuse``: seeds can
run as separate processes, then ``--seeds 21 42 84 --reuse`` makes the recipe choice and the statistics).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import BUSI, OUTPUT, fail, set_threads  # noqa: E402

#: Candidate self-training recipes: overrides of the ``selftrain`` config section.
RECIPES: dict[str, dict[str, Any]] = {
    "teacher-init": {"student": {"init_from_teacher": True}},
    "scratch": {"student": {"init_from_teacher": False}},  # the study's recipe and the package default
}
GAIN_TARGET = 0.03
CONTROL_TARGET = 0.015
BOOTSTRAP = 10_000
#: ``--smoke``: images per class linked into a small copy of BUSI.
SMOKE_PER_CLASS = {"benign": 14, "malignant": 10, "normal": 8}


# ---------------------------------------------------------------------------------------------- data


def smoke_subset(root: Path, out: Path) -> Path:
    """A small BUSI-layout folder of symlinks (images with all their masks), the first images of each class."""
    shutil.rmtree(out, ignore_errors=True)
    for cls, n in SMOKE_PER_CLASS.items():
        src = root / cls
        if not src.is_dir():
            fail(f"{src} not found: --smoke needs BUSI's class folders")
        (out / cls).mkdir(parents=True)
        images = sorted(p for p in src.glob("*.png") if "_mask" not in p.name)[:n]
        for image in images:
            for path in [image, *src.glob(f"{glob_escape(image.stem)}_mask*.png")]:
                (out / cls / path.name).symlink_to(path.resolve())
    return out


def glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "[]*?" else c for c in text)


def per_image_dice(folder: Path) -> dict[str, float]:
    """``id -> Dice`` from a run folder's per-image test metrics."""
    path = folder / "test_per_image.csv"
    if not path.is_file():
        fail(f"{path} not found: the run wrote no per-image test metrics (is data.test_fraction > 0?)")
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if rows and not {"id", "dice"} <= set(rows[0]):
        fail(f"{path} lacks the 'id' and 'dice' columns (found {sorted(rows[0])})")
    return {r["id"]: float(r["dice"]) if r["dice"] not in ("", "nan") else math.nan for r in rows}


def mean(values: list[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan


# ---------------------------------------------------------------------------------------------- runs


def build(base: dict[str, Any], name: str, selftrain: dict[str, Any] | None = None, **data: Any):
    from teachseg.config import build_config

    cfg = {**base, "name": name, "data": {**base["data"], **data}}
    if selftrain is not None:
        cfg["selftrain"] = merge(base["selftrain"], selftrain)
    return build_config(cfg, "bench")


def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


#: ``--reuse``: keep a finished run folder whose ``bench_config.yaml`` matches the config exactly.
REUSE = False


def reusable(cfg) -> dict[str, Any] | None:
    """The summary of a finished run folder made by exactly this config (``--reuse`` only)."""
    run_dir = cfg.run_dir
    done, made_by = run_dir / "summary.json", run_dir / "bench_config.yaml"
    if REUSE and done.is_file() and made_by.is_file() and made_by.read_text() == cfg.to_yaml():
        print(f"  reusing {run_dir} (same config)", flush=True)
        return json.loads(done.read_text())
    return None


def fresh(cfg) -> Path:
    run_dir = cfg.run_dir
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    return run_dir


def selftrain_arm(base: dict[str, Any], name: str, selftrain: dict[str, Any]) -> dict[str, Any]:
    """One self-training run; returns its folder, summary, Student folder and pseudo-label statistics."""
    from teachseg.selftrain.loop import run_selftrain

    cfg = build(base, name, selftrain)
    summary = reusable(cfg)
    run_dir = cfg.run_dir
    if summary is None:
        run_dir = fresh(cfg)
        summary = run_selftrain(cfg, run_dir, console=None)
        (run_dir / "bench_config.yaml").write_text(cfg.to_yaml())  # what made this folder's numbers
    student = summary.get("best_student")
    if not student:
        fail(f"{run_dir}: no Student was trained ({summary.get('stopped_because')})")
    lineage = json.loads((run_dir / "lineage.json").read_text())
    gens = [g for g in lineage["generations"] if g.get("generation") == student.get("generation", 1)]
    return {
        "dir": run_dir,
        "summary": summary,
        "student": student,
        "student_dir": run_dir / f"gen{student.get('generation', 1)}",
        "pseudo": gens[0].get("pseudo") if gens else None,
    }


def with_teacher(
    base: dict[str, Any], name: str, selftrain: dict[str, Any], teacher_dir: Path
) -> dict[str, Any]:
    """A Student arm that reuses an existing Teacher (so every arm starts from the very same weights)."""
    from teachseg.errors import TeachsegError

    try:
        return selftrain_arm(base, name, merge(selftrain, {"teacher_model": str(teacher_dir)}))
    except TeachsegError as exc:  # e.g. a stricter external-Teacher check than this same-split reuse passes
        print(
            f"  {name}: reusing the Teacher {teacher_dir} was refused ({exc}); training it again with the "
            "same seed instead (same split and data order, not necessarily bit-identical weights)",
            flush=True,
        )
        return selftrain_arm(base, name, selftrain)


def supervised_arm(base: dict[str, Any], name: str) -> dict[str, Any]:
    from teachseg.training.fit import train_model
    from teachseg.training.prepare import prepare_data
    from teachseg.training.spec import ModelSpec

    cfg = build(base, name, label_fraction=1.0)
    summary = reusable(cfg)
    run_dir = cfg.run_dir
    if summary is None:
        run_dir = fresh(cfg)
        data = prepare_data(cfg, run_dir)
        summary = train_model(cfg, run_dir, data.train, data.val, data.test, spec=ModelSpec.teacher(cfg))
        (run_dir / "bench_config.yaml").write_text(cfg.to_yaml())
    return {"dir": run_dir, "summary": summary}


# ---------------------------------------------------------------------------------------------- statistics


def paired(a: list[dict[str, float]], b: list[dict[str, float]]) -> tuple[float, float, float, int]:
    """Mean over seeds of mean(a - b) per seed, and its 95% bootstrap interval over test images.

    ``a[s]``, ``b[s]``: ``id -> Dice`` of seed ``s``. Each image's differences are averaged over the seeds
    in which it is a test image; the bootstrap resamples images and recomputes the seed-weighted mean
    ``sum(k_i * d_i) / sum(k_i)`` (``k_i``: the image's number of seeds), which equals the point estimate
    when every seed has as many test images. Returns (estimate, low, high, number of images).
    """
    per_image: dict[str, list[float]] = {}
    seed_means = []
    for sa, sb in zip(a, b, strict=True):
        if set(sa) != set(sb):
            fail("two arms of the same seed were scored on different test images: the splits differ")
        diffs = {i: sa[i] - sb[i] for i in sa if not (math.isnan(sa[i]) or math.isnan(sb[i]))}
        seed_means.append(float(np.mean(list(diffs.values()))))
        for i, diff in diffs.items():
            per_image.setdefault(i, []).append(diff)
    d = np.array([np.mean(v) for v in per_image.values()])
    k = np.array([len(v) for v in per_image.values()], dtype=float)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(d), size=(BOOTSTRAP, len(d)))
    boot = (d[idx] * k[idx]).sum(axis=1) / k[idx].sum(axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return float(np.mean(seed_means)), float(lo), float(hi), len(d)


# ---------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="one seed (42), 128 px, 25 epochs")
    mode.add_argument(
        "--smoke",
        action="store_true",
        help=f"one seed, {sum(SMOKE_PER_CLASS.values())} BUSI images, 64 px, 1 epoch: checks the script end "
        "to end; figures are meaningless",
    )
    ap.add_argument("--data", type=Path, default=BUSI)
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="(default 21 42 84; --quick: 42)")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--image-size", type=int, default=None)
    ap.add_argument("--out", type=Path, default=OUTPUT / "selftrain-busi")
    ap.add_argument("--no-ceiling", action="store_true", help="skip the fully supervised ceiling")
    ap.add_argument(
        "--recipes",
        nargs="+",
        choices=list(RECIPES),
        default=list(RECIPES),
        help="candidate Student recipes; with more than one, the figures use the one with the best mean "
        "validation Dice (default: all: %(default)s)",
    )
    ap.add_argument("--confidence", default="linear", choices=["linear", "threshold", "none"])
    ap.add_argument("--confidence-threshold", type=float, default=0.9)
    ap.add_argument("--pseudo-weight", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument(
        "--workers", type=int, default=None, help="data loader workers per run (default: up to 2)"
    )
    ap.add_argument("--tag", default="", help="suffix of the run folders")
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="keep finished run folders made by the same config (e.g. seeds run as separate processes, "
        "then all seeds together with --reuse for the recipe choice and the statistics)",
    )
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.data.is_dir():
        fail(f"BUSI not found at {args.data}; pass --data DIR")
    set_threads(args.threads)
    global REUSE
    REUSE = args.reuse
    short = args.quick or args.smoke
    seeds = args.seeds or ([42] if short else [21, 42, 84])
    epochs = args.epochs or (1 if args.smoke else 25 if args.quick else 40)
    size = args.image_size or (64 if args.smoke else 128 if args.quick else 256)
    data_root = smoke_subset(args.data, args.out / "busi-smoke") if args.smoke else args.data
    recipes = list(dict.fromkeys(args.recipes))
    tag = args.tag
    print(
        f"settings: data {data_root}, image_size {size}, epochs {epochs}, seeds {seeds}, label_fraction 0.25, "
        f"val_fraction 0.1, test_fraction 0.2, confidence {args.confidence}, pseudo_weight {args.pseudo_weight}, "
        f"recipes {recipes}",
        flush=True,
    )

    def base_config(seed: int) -> dict[str, Any]:
        return {
            "seed": seed,
            "output_dir": str(args.out),
            "data": {
                "root": str(data_root),
                "image_size": size,
                "val_fraction": 0.1,
                "test_fraction": 0.2,
                "label_fraction": 0.25,
                "batch_size": 8,
                "num_workers": 0
                if args.smoke
                else (args.workers if args.workers is not None else min(2, os.cpu_count() or 1)),
            },
            "model": {"arch": "linknet", "encoder": "resnet34", "encoder_weights": None},
            # fixed epochs: the protocol its ledger was recorded with (before train.stop: converge)
            "train": {"stop": "epochs", "epochs": epochs, "lr": 1e-3, "progress_bar": False},
            "selftrain": {
                "max_generations": 1,
                "tta": True,
                "confidence": {"mode": args.confidence, "threshold": args.confidence_threshold},
                "pseudo_weight": args.pseudo_weight,
                "student": {"strong_augment": True},
            },
        }

    # 1. Teacher and one Student per recipe (all recipes start from the same Teacher).
    runs: dict[int, dict[str, Any]] = {}
    for seed in seeds:
        t0 = time.perf_counter()
        base = base_config(seed)
        first, *others = recipes
        arms = {first: selftrain_arm(base, f"selftrain{tag}-{first}-seed{seed}", RECIPES[first])}
        teacher_dir = arms[first]["dir"] / "gen0"
        for recipe in others:
            arms[recipe] = with_teacher(
                base, f"selftrain{tag}-{recipe}-seed{seed}", RECIPES[recipe], teacher_dir / "model"
            )
        teacher = arms[first]["summary"]["teacher"]
        runs[seed] = {"base": base, "arms": arms, "teacher": teacher, "teacher_dir": teacher_dir}
        vals = ", ".join(f"{r} {a['student']['val_dice']:.4f}" for r, a in arms.items())
        print(
            f"seed {seed}: validation Dice: teacher {teacher['val_dice']:.4f}; students {vals} "
            f"({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )

    # 2. The recipe, chosen on validation Dice only.
    val_means = {
        r: statistics.mean(runs[s]["arms"][r]["student"]["val_dice"] for s in seeds) for r in recipes
    }
    chosen = max(recipes, key=lambda r: val_means[r])
    if len(recipes) > 1:
        print("recipe choice on the Students' mean validation Dice over seeds (test not read):")
        for r in recipes:
            per_seed = ", ".join(f"{runs[s]['arms'][r]['student']['val_dice']:.4f}" for s in seeds)
            print(
                f"  {r}: mean val Dice {val_means[r]:.4f} (per seed {per_seed}){'  <- chosen' if r == chosen else ''}"
            )
    else:
        print(f"recipe: {chosen} (the only candidate given; no choice made)")

    # 3. Control (same Teacher, initialisation and epochs, pseudo_weight 0) and supervised ceiling.
    teach_s, student_s, control_s, ceiling_s = [], [], [], []
    rows = []
    for seed in seeds:
        t0 = time.perf_counter()
        run = runs[seed]
        control = with_teacher(
            run["base"],
            f"control{tag}-{chosen}-seed{seed}",
            merge(RECIPES[chosen], {"pseudo_weight": 0.0}),
            run["teacher_dir"] / "model",
        )
        ceiling = None if args.no_ceiling else supervised_arm(run["base"], f"supervised{tag}-seed{seed}")
        arm = run["arms"][chosen]
        teach_s.append(per_image_dice(run["teacher_dir"]))
        student_s.append(per_image_dice(arm["student_dir"]))
        control_s.append(per_image_dice(control["student_dir"]))
        ceiling_s.append(per_image_dice(ceiling["dir"]) if ceiling else {})
        row = {
            "seed": seed,
            "teacher": mean(list(teach_s[-1].values())),
            "control": mean(list(control_s[-1].values())),
            "student": mean(list(student_s[-1].values())),
            "supervised": mean(list(ceiling_s[-1].values())) if ceiling else math.nan,
            "val": (run["teacher"]["val_dice"], control["student"]["val_dice"], arm["student"]["val_dice"]),
            "pseudo": arm["pseudo"] or {},
            "n_test": len(teach_s[-1]),
        }
        rows.append(row)
        gap = row["supervised"] - row["teacher"]
        closed = (
            f"student closes {(row['student'] - row['teacher']) / gap:.0%} of the teacher-to-ceiling gap"
            if gap > 0
            else "no teacher-to-ceiling gap to close"
            if ceiling
            else "no ceiling"
        )
        pseudo_dice = row["pseudo"].get("dice_vs_withheld_masks")
        pseudo_text = "n/a" if pseudo_dice is None else f"{pseudo_dice:.4f}"
        print(
            f"seed {seed}: test Dice teacher {row['teacher']:.4f} | control {row['control']:.4f} | "
            f"student {row['student']:.4f} | supervised {row['supervised']:.4f} "
            f"(n_test {row['n_test']}; val {row['val'][0]:.4f} / {row['val'][1]:.4f} / {row['val'][2]:.4f}; "
            f"pseudo-label Dice vs withheld masks {pseudo_text}; {closed}; {time.perf_counter() - t0:.0f} s)",
            flush=True,
        )

    # 4. Paired statistics over test images (each image averaged over seeds first).
    gain, lo, hi, n_images = paired(student_s, teach_s)
    ctrl, clo, chi, _ = paired(student_s, control_s)
    ctrl_vs_teacher, tlo, thi, _ = paired(control_s, teach_s)
    if len(seeds) > 1:
        per_seed = ", ".join(f"{r['student'] - r['teacher']:+.4f}" for r in rows)
        print(
            f"student - teacher per seed: {per_seed}; sd {statistics.stdev(r['student'] - r['teacher'] for r in rows):.4f}"
        )
        per_seed = ", ".join(f"{r['student'] - r['control']:+.4f}" for r in rows)
        print(
            f"student - control per seed: {per_seed}; sd {statistics.stdev(r['student'] - r['control'] for r in rows):.4f}"
        )
    print(
        f"recipe {chosen}; {len(seeds)} seed(s){' (one seed: no seed spread)' if len(seeds) == 1 else ''}; "
        f"{n_images} independent test images; 95% percentile bootstrap over images, {BOOTSTRAP} resamples"
    )
    print(f"control_minus_teacher: {ctrl_vs_teacher:.3f} [{tlo:.3f}, {thi:.3f}]  (extra training alone)")
    print(
        f"targets: gain over teacher >= {GAIN_TARGET} ({'meets' if gain >= GAIN_TARGET else 'MISSES'}), "
        f"over control >= {CONTROL_TARGET} ({'meets' if ctrl >= CONTROL_TARGET else 'MISSES'})"
    )
    if args.smoke:
        print("smoke run: too few images and epochs for the figures to mean anything")
    print(f"selftrain_gain_over_control: {ctrl:.3f} [{clo:.3f}, {chi:.3f}]")
    print(f"selftrain_test_dice_gain: {gain:.3f} [{lo:.3f}, {hi:.3f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
