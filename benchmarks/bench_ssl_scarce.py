"""Where do unlabelled images pay? BUSI with scarce masks, every arm against a converged supervised baseline.

The question (issue #32): with my masks and my unlabelled images, what beats a *converged* supervised model, and
by how much? The earlier protocol (``bench_ssl_busi.py``: 40 fixed epochs, choice on validation) could not
answer it: its supervised baseline was short of steps, not of labels.

Protocol, per seed (21, 42, 84): the project's seeded, stratified split with test 0.2, validation 0.1 and a
selection split 0.1 (``data.select_fraction``: the images that choose between arms, which no decision inside a
run reads); masks kept for 1/16, 1/8 or 1/4 of the training images (nested, whole duplicate groups), the rest
unlabelled. LinkNet-ResNet34 from scratch, 128 px, batch 8. Every model trains until validation Dice stops
improving (``train.stop: converge``, the package defaults: an evaluation every ~100 optimiser steps, patience
10 evaluations, learning rate halved on plateaus), so no arm is cut short by an epoch budget. ``supervised``
and the ceiling get a step cap of ``(1 + max_generations) x train.converge.max_steps``, at least the most any
teacher_student run (a Teacher and up to 3 Students) may take. The strong augmentation's modality is the
dataset's, decided once from all its images (``split.json``), the same for every arm and seed.

Arms at 1/8 (the headline; about 46 masks): ``supervised``; ``teacher_student`` (the study's loop);
``pretrain`` (DenseCL pretraining of the encoder on the training images, labelled and unlabelled, then
supervised fine-tuning); ``pretrain+teacher_student`` (a pretrained Teacher, then Students); ``mean_teacher``
and ``fixmatch`` (the better of the two on the selection images is the online arm); and the ceiling
(``supervised`` with every mask). One pretraining per seed serves every arm and fraction (its pool, the
training images, does not depend on the fraction: the grids share one cache folder). The arm reported at 1/8
is chosen on mean selection Dice over seeds, never on test; at 1/16 and 1/4 the converged supervised run and
that arm run, so the labels gap and the gain can be read as labels grow.

Statistics: the unit is the test image. ``unlabelled_gain_at_eighth`` is the chosen arm minus supervised at 1/8,
each test image averaged over the seeds whose test split holds it, with a 95% percentile bootstrap over images;
``unlabelled_gap_closed_at_eighth`` is (arm - supervised) / (ceiling - supervised) per seed (each seed against
its own ceiling), averaged over seeds. Bars (the issue's): gain >= 0.03 with its interval above 0, gap closed
>= 0.5.

    python benchmarks/bench_ssl_scarce.py                 # reads the ledger; trains what it lacks (hours)
    python benchmarks/bench_ssl_scarce.py --seeds 42 --threads 1 --out DIR   # one seed per process
    python benchmarks/bench_ssl_scarce.py --quick         # seed 21 at 1/8, 64 px, short patience, 1 Student
    python benchmarks/bench_ssl_scarce.py --smoke         # 32 images, 64 px: checks the script runs

Prints the labels gap per fraction (ceiling minus converged supervised), a row per arm and fraction (test Dice
mean +/- SD over seeds, selection Dice, optimiser steps, minutes with the pretraining), the choice, then
``unlabelled_gain_at_eighth: X.XXX [lo, hi]`` and, last, ``unlabelled_gap_closed_at_eighth: X.XX``. Finished
runs are recorded without weights in ``benchmarks/results/ssl-scarce-<size>px/`` and restored from there, so the
default mode adds up over sittings and machines; a grid whose runs are all in the ledger prints in seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import BUSI, OUTPUT, fail, set_threads  # noqa: E402
from benchmarks._ledger import LEDGER  # noqa: E402
from benchmarks.bench_selftrain_busi import merge, smoke_subset  # noqa: E402
from benchmarks.bench_ssl_busi import cells_of, mean, paired_over_images, run_grid, seed_sd  # noqa: E402

EIGHTH = 0.125
#: fractions where only supervised and the arm chosen at 1/8 run
OTHER_FRACTIONS = (0.0625, 0.25)
#: arm -> (selftrain.method, config overrides)
ARMS: dict[str, tuple[str, dict[str, Any]]] = {
    "supervised": ("supervised", {}),
    "teacher_student": ("teacher_student", {}),
    "pretrain": ("pretrain", {}),
    "pretrain+teacher_student": ("teacher_student", {"model": {"encoder_weights": "pretrain"}}),
    "mean_teacher": ("mean_teacher", {}),
    "fixmatch": ("fixmatch", {}),
}
ONLINE = ("mean_teacher", "fixmatch")
GAIN_BAR, GAP_BAR = 0.03, 0.5


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument(
        "--quick",
        action="store_true",
        help="seed 21 at 1/8 only; 64 px, evaluations every 30 steps, patience 4, one Student, 10 pretraining "
        "epochs (a check of the whole pipeline in about an hour; figures not comparable with the default's)",
    )
    mode.add_argument("--smoke", action="store_true", help="32 BUSI images, 64 px, a few steps per arm")
    ap.add_argument("--data", type=Path, default=BUSI)
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="(default 21 42 84; --quick: 21)")
    ap.add_argument("--image-size", type=int, default=None, help="(default 128; --quick, --smoke: 64)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument(
        "--stage",
        choices=("eighth", "all"),
        default="all",
        help="eighth: only the 1/8 arms and the ceiling (the other fractions need the choice made at 1/8)",
    )
    ap.add_argument("--out", type=Path, default=OUTPUT / "ssl-scarce")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--workers", type=int, default=0, help="data loader workers per run (default 0)")
    ap.add_argument(
        "--ledger", type=Path, default=None, help="default benchmarks/results/ssl-scarce-<size>px"
    )
    ap.add_argument("--no-ledger", action="store_true", help="neither restore from nor record to the ledger")
    return ap.parse_args(argv)


def base_config(args: argparse.Namespace, root: Path, size: int) -> dict[str, Any]:
    """The protocol every arm shares (the package's converged training; see the module docstring)."""
    raw: dict[str, Any] = {
        "output_dir": str(args.out),
        "data": {
            "root": str(root),
            "image_size": size,
            "val_fraction": 0.1,
            "test_fraction": 0.2,
            "select_fraction": 0.1,
            "batch_size": args.batch_size,
            "num_workers": args.workers,
        },
        "model": {"arch": "linknet", "encoder": "resnet34", "encoder_weights": None},
        "train": {"stop": "converge", "progress_bar": False},
        "selftrain": {"max_generations": 3, "patience": 1},
        "pretrain": {"objective": "densecl"},
    }
    if args.quick or args.smoke:
        short = (
            {"eval_every_steps": 30, "patience": 4} if args.quick else {"eval_every_steps": 4, "patience": 1}
        )
        raw = merge(
            raw,
            {
                "train": {"converge": {**short, "max_steps": 3000 if args.quick else 40}},
                "selftrain": {"max_generations": 1},
                "pretrain": {"epochs": 10 if args.quick else 1, "batch_size": 16},
            },
        )
    return raw


def baseline_cap(base: dict[str, Any]) -> int:
    """The step cap of ``supervised`` and the ceiling: what a teacher_student run may take at most."""
    from teachseg.config import build_config
    from teachseg.selftrain.experiment import baseline_max_steps

    cfg = build_config(merge(base, {"experiment": {"methods": ["supervised", "teacher_student"]}}), "bench")
    return baseline_max_steps(cfg)


#: experiment folder -> the arm it ran (for the minutes column)
GRIDS: dict[Path, str] = {}


def arm_grid(
    arm: str, base: dict[str, Any], fractions: list[float], seeds: list[int], ledger: Path | None
) -> dict[tuple[str, float], Any]:
    """Run (or read back) one arm at ``fractions`` (a grid of its own); its cells, keyed by (arm, fraction)."""
    method, overrides = ARMS[arm]
    raw = merge(base, overrides)
    if method == "supervised":  # a grid of its own: give it the cap of the longest arm explicitly
        raw = merge(raw, {"train": {"converge": {"max_steps": baseline_cap(base)}}})
    name = f"ssl-scarce-{arm.replace('+', '-')}-l{'-'.join(f'{f:g}' for f in fractions)}"
    share_pretraining(Path(raw["output_dir"]), name)
    exp = run_grid(name, raw, [method], fractions, seeds, ledger=ledger)
    GRIDS[exp] = arm
    cells = cells_of(exp, None)
    return {(arm, f): _renamed(c, arm) for (_, f), c in cells.items()}


def share_pretraining(out: Path, grid: str) -> None:
    """Point the grid's pretraining cache (``output_dir/<grid>/pretrain``) at one folder shared by every grid,
    so one pretraining per seed serves every arm and fraction (its identity is checked where it is read)."""
    shared = out / "pretrain-shared"
    shared.mkdir(parents=True, exist_ok=True)
    link = out / grid / "pretrain"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.exists() and not link.is_symlink():
        link.symlink_to(shared.resolve(), target_is_directory=True)


def _renamed(cell: Any, arm: str) -> Any:
    cell.method = arm
    return cell


def minutes(grids: dict[Path, str]) -> dict[tuple[str, float, int], float]:
    """(arm, fraction, seed) -> minutes of the run's training, its pretraining included (from summaries)."""
    out: dict[tuple[str, float, int], float] = {}
    for exp, arm in grids.items():
        for summary in exp.glob("*/summary.json"):
            data = json.loads(summary.read_text())
            config = (summary.parent / "config.yaml").read_text()
            seed = data.get("teacher", {}).get("seed") if isinstance(data.get("teacher"), dict) else None
            frac = _fraction(config)
            wall = data.get("wall_seconds")
            if seed is None or frac is None or not isinstance(wall, (int, float)):
                continue
            pretrain = (data.get("teacher") or {}).get("pretrain") or {}
            extra = pretrain.get("seconds", 0.0) if isinstance(pretrain, dict) else 0.0
            out[(arm, frac, int(seed))] = (float(wall) + float(extra or 0.0)) / 60.0
    return out


def _fraction(config_yaml: str) -> float | None:
    import yaml

    data = yaml.safe_load(config_yaml) or {}
    value = (data.get("data") or {}).get("label_fraction")
    return float(value) if isinstance(value, (int, float)) else None


def steps_of(cell: Any) -> float:
    return mean(float(v) for v in cell.steps.values()) if getattr(cell, "steps", None) else math.nan


def choose_online(cells: dict[tuple[str, float], Any]) -> str | None:
    """``mean_teacher`` or ``fixmatch``: the higher mean selection Dice at 1/8 (never test)."""
    options = [(m, mean(cells[(m, EIGHTH)].select.values())) for m in ONLINE if (m, EIGHTH) in cells]
    options = [(m, v) for m, v in options if not math.isnan(v)]
    return max(options, key=lambda mv: mv[1])[0] if options else None


def choose_arm(cells: dict[tuple[str, float], Any], candidates: list[str]) -> str | None:
    """The arm of highest mean selection Dice at 1/8 among ``candidates`` (never test)."""
    options = [(a, mean(cells[(a, EIGHTH)].select.values())) for a in candidates if (a, EIGHTH) in cells]
    options = [(a, v) for a, v in options if not math.isnan(v)]
    return max(options, key=lambda av: av[1])[0] if options else None


def gap_closed(arm: Any, sup: Any, ceiling: Any) -> tuple[float, dict[int, float]]:
    from teachseg.reports.sections.methods import gap_closed_per_seed

    per_seed = gap_closed_per_seed(arm, sup, ceiling)
    return (float(np.mean(list(per_seed.values()))) if per_seed else math.nan), per_seed


def print_table(cells: dict[tuple[str, float], Any], mins: dict[tuple[str, float, int], float]) -> None:
    print("\nlabel fraction | arm | seeds | test Dice (mean ± SD) | select Dice | steps | minutes")
    for (arm, frac), c in sorted(cells.items(), key=lambda kv: (kv[0][1], list(ARMS).index(kv[0][0]))):
        tests = list(c.test.values())
        m = [mins[(arm, frac, s)] for s in c.test if (arm, frac, s) in mins]
        label = "supervised (ceiling)" if frac == 1.0 else arm
        print(
            f"{frac:g} | {label} | {len(tests)} | {mean(tests):.4f} ± {seed_sd(tests):.4f} | "
            f"{mean(c.select.values()):.4f} | {steps_of(c):.0f} | {mean(m):.0f}",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.data.is_dir():
        fail(f"BUSI not found at {args.data}; pass --data DIR")
    set_threads(args.threads)
    short = args.quick or args.smoke
    seeds = args.seeds or ([21] if short else [21, 42, 84])
    size = args.image_size or (64 if short else 128)
    root = smoke_subset(args.data, args.out / "busi-smoke") if args.smoke else args.data
    ledger = None if (args.no_ledger or args.smoke) else (args.ledger or LEDGER / f"ssl-scarce-{size}px")
    if args.quick and ledger is not None and args.ledger is None:
        ledger = LEDGER / f"ssl-scarce-{size}px-quick"
    base = base_config(args, root, size)
    print(
        f"settings: data {root}, {size} px, seeds {seeds}, val 0.1, test 0.2, select 0.1, LinkNet-ResNet34 from "
        f"scratch, train.stop converge, supervised step cap {baseline_cap(base)}",
        flush=True,
    )

    cells: dict[tuple[str, float], Any] = {}
    for arm in ARMS:
        cells |= arm_grid(arm, base, [EIGHTH], seeds, ledger)
    ceiling = arm_grid("supervised", base, [1.0], seeds, ledger).get(("supervised", 1.0))
    online = choose_online(cells)
    if online is not None:
        other = next(m for m in ONLINE if m != online)
        print(f"online arm chosen on selection at 1/8: {online} (over {other})", flush=True)
        cells.pop((other, EIGHTH), None)
    candidates = [a for a in ARMS if a != "supervised" and (a, EIGHTH) in cells]
    chosen = choose_arm(cells, candidates)
    if chosen is None or ("supervised", EIGHTH) not in cells:
        fail("no arm or no supervised baseline finished at 1/8")
    tried = ", ".join(f"{a} {mean(cells[(a, EIGHTH)].select.values()):.4f}" for a in candidates)
    print(f"arm chosen on selection Dice at 1/8: {chosen} ({tried})", flush=True)

    if args.stage == "all" and not short:
        for arm in dict.fromkeys(["supervised", chosen]):
            cells |= arm_grid(arm, base, list(OTHER_FRACTIONS), seeds, ledger)
    all_cells = dict(cells)
    if ceiling is not None:
        all_cells[("supervised", 1.0)] = ceiling
    print_table(all_cells, minutes(GRIDS))

    if ceiling is not None:
        print("\nlabels gap at convergence (ceiling minus supervised, paired over test images):")
        for frac in sorted({f for (a, f) in cells if a == "supervised"}):
            gap, lo, hi, n = paired_over_images(ceiling, cells[("supervised", frac)])
            print(f"  at {frac:g}: {gap:+.3f} [{lo:+.3f}, {hi:+.3f}] ({n} test images)", flush=True)

    sup, arm = cells[("supervised", EIGHTH)], cells[(chosen, EIGHTH)]
    for frac in OTHER_FRACTIONS:
        if (chosen, frac) in cells and ("supervised", frac) in cells:
            g, lo, hi, n = paired_over_images(cells[(chosen, frac)], cells[("supervised", frac)])
            print(f"{chosen} minus supervised at {frac:g}: {g:+.3f} [{lo:+.3f}, {hi:+.3f}] ({n} test images)")
    gain, lo, hi, n = paired_over_images(arm, sup)
    gap, per_seed = gap_closed(arm, sup, ceiling) if ceiling is not None else (math.nan, {})
    print(f"\npaired over {n} test images (each averaged over the seeds whose test split holds it)")
    print("gap closed per seed: " + ", ".join(f"{s}: {v:.2f}" for s, v in per_seed.items()))
    print(
        f"bars: gain >= {GAIN_BAR} with its interval above 0 "
        f"{'met' if gain >= GAIN_BAR and lo > 0 else 'MISSED'} ({gain:.4f}, lower end {lo:.4f}); "
        f"gap closed >= {GAP_BAR} {'met' if gap >= GAP_BAR else 'MISSED'} ({gap:.4f})"
    )
    print(f"unlabelled_gain_at_eighth: {gain:.3f} [{lo:.3f}, {hi:.3f}]")
    print(f"unlabelled_gap_closed_at_eighth: {gap:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
