"""Does ``teachseg suggest`` choose better next masks than random choice? BUSI, from 1/16 to 1/8 of the masks.

Protocol, per seed (21, 42, 84): the project's seeded, stratified split (test 0.2, validation 0.1, duplicates
grouped) with ``label_fraction`` 1/16: the initial masked images; the other training images are the pool,
their masks withheld. Round 0: LinkNet-ResNet34 from scratch, 128 px, trained on the initial masks through the
project's own training path (``teachseg.training.fit.train_model``) to convergence: ``train.stop: converge``
when the installed teachseg has it, else a fixed number of epochs with the best validation epoch kept (the
script says which, and warns when a model was best in the last tenth of its epochs). Then each arm adds the
next 1/16 (``round(training images / 16)`` images, masks revealed from the withheld ones) and trains from
scratch on the initial and the added masks, the same way:

* ``suggest``: ``teachseg suggest``'s choice from the round-0 run (:mod:`teachseg.suggest`: flip-view
  uncertainty on uncertain tumour-like regions, times the distance to the masked and already chosen images in
  the encoder's features; the pool's hygiene as the command applies it);
* ``uncertainty``: the same informativeness alone (``diversity`` 0);
* ``random``: the same number drawn uniformly from the same pool (seeded by the seed).

The settings of the score are chosen on **validation**, never on test: ``suggest`` over two diversity weights
(:data:`SUGGEST_GRID`; ``uncertainty`` has one setting, :data:`UNCERTAINTY_GRID`), each setting's model
trained and the one of highest mean validation Dice over the seeds kept; test Dice is read after that choice.
(The grid was 2 x 2 for suggest and 2 for uncertainty until 2026-12-07: each candidate is a converged training
per seed, about an hour at one thread on a 2-core CPU, which put three seeds out of reach.) The scoring runs once per seed; only the choice changes with the setting.

Statistics: the unit is the test image. Each image's suggest-minus-random Dice is averaged over the seeds in
whose test split it is, then a 95% percentile bootstrap over images (:func:`teachseg.reports.stats.paired_test`).

    python benchmarks/bench_suggest_busi.py            # seeds 21, 42, 84 at 128 px
    python benchmarks/bench_suggest_busi.py --quick    # seed 21 only (one third of the default's runs)
    python benchmarks/bench_suggest_busi.py --smoke    # 32 images, 64 px, 2 epochs: checks the script runs

Prints the round-0 and per-arm rows (validation and test Dice per seed), the settings chosen on validation,
test Dice per arm and seed, whether the issue's bar is met (gain >= 0.02 with its interval above 0, on
unrounded figures), then, last, ``suggest_gain_over_random_at_eighth: X.XXX [lo, hi]``. Run folders live in
``bench-output/suggest-busi/``; a finished one is reused when its config and choice are unchanged, and every
finished run is recorded without weights in ``benchmarks/results/suggest-busi-<size>px-<stop>/`` and restored
from there (not with ``--smoke``), so the default mode adds up over sittings.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import BUSI, OUTPUT, fail, set_threads  # noqa: E402
from benchmarks._ledger import LEDGER, provenance  # noqa: E402
from benchmarks.bench_selftrain_busi import merge, smoke_subset  # noqa: E402

SEEDS = [21, 42, 84]
FRACTION = 1 / 16
#: candidate settings of each arm, chosen on validation: (area_exponent, diversity)
#: (two settings of the diversity weight, the score's main design choice, at the default area exponent: each
#: candidate costs a converged training per seed, about an hour at one thread on a 2-core CPU)
SUGGEST_GRID = [(0.5, 1.0), (0.5, 2.0)]
UNCERTAINTY_GRID = [(0.5, 0.0)]
BAR = 0.02
#: epochs without ``train.stop: converge`` (the methods benchmark's: its supervised runs peaked at 29-40 of 40)
FALLBACK_EPOCHS = 40
KEEP = ("bench.json", "config.yaml", "summary.json", "metrics.csv", "val_per_image.csv", "test_per_image.csv")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="seed 21 only")
    mode.add_argument(
        "--smoke", action="store_true", help="32 BUSI images, 64 px, 2 epochs (figures meaningless)"
    )
    ap.add_argument("--data", type=Path, default=BUSI)
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="(default 21 42 84; --quick: 21)")
    ap.add_argument("--image-size", type=int, default=None, help="(default 128; --smoke: 64)")
    ap.add_argument("--epochs", type=int, default=None, help="fixed epochs when converge is not used")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--out", type=Path, default=OUTPUT / "suggest-busi")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument(
        "--ledger", type=Path, default=None, help="default benchmarks/results/suggest-busi-<size>px-<stop>"
    )
    ap.add_argument("--no-ledger", action="store_true", help="neither restore from nor record to the ledger")
    return ap.parse_args(argv)


def converge_supported() -> bool:
    """Whether the installed teachseg trains to convergence (``train.stop``, from the methods issue)."""
    from teachseg.config.sections import TrainConfig

    return "stop" in TrainConfig.model_fields


def base_config(args: argparse.Namespace, root: Path, size: int, epochs: int | None) -> dict[str, Any]:
    train: dict[str, Any] = {"progress_bar": False}
    train.update({"epochs": epochs} if epochs else {"stop": "converge"})
    return {
        "output_dir": str(args.out),
        "data": {
            "root": str(root),
            "image_size": size,
            "val_fraction": 0.1,
            "test_fraction": 0.2,
            "label_fraction": FRACTION,
            "batch_size": args.batch_size,
            "num_workers": 0,
        },
        "model": {"arch": "linknet", "encoder": "resnet34", "encoder_weights": None},
        "train": train,
    }


# --------------------------------------------------------------------------------------------- runs


def key_of(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def finished(run_dir: Path, key: str) -> bool:
    try:
        return (
            json.loads((run_dir / "bench.json").read_text())["key"] == key
            and (run_dir / "summary.json").is_file()
        )
    except (OSError, ValueError, KeyError):
        return False


def same_config(run_dir: Path, cfg: Any) -> bool:
    """Whether ``run_dir`` was started with ``cfg`` (its ``config.yaml``), so that what it left can be resumed."""
    try:
        return (run_dir / "config.yaml").read_text() == cfg.to_yaml()
    except OSError:
        return False


def restore(ledger: Path | None, run_dir: Path, key: str) -> bool:
    """Copy a finished run with this key from the ledger into ``run_dir`` (no weights: it is read, not resumed)."""
    if ledger is None or finished(run_dir, key):
        return finished(run_dir, key)
    src = ledger / run_dir.parent.name / run_dir.name
    if not finished(src, key):
        return False
    shutil.rmtree(run_dir, ignore_errors=True)
    shutil.copytree(src, run_dir)
    print(f"  {run_dir.parent.name}/{run_dir.name}: restored from the ledger", flush=True)
    return True


def record(ledger: Path | None, run_dir: Path) -> None:
    if ledger is None:
        return
    dest = ledger / run_dir.parent.name / run_dir.name
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in KEEP:
        if (run_dir / name).is_file():
            shutil.copyfile(run_dir / name, tmp / name)
    (tmp / "provenance.json").write_text(json.dumps(provenance(), indent=2) + "\n")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)


def train(cfg: Any, run_dir: Path, records: list[Any], data: Any, key: str, chosen: list[str]) -> None:
    """Train one model on ``records`` (the project's training path) and mark the folder finished."""
    from teachseg.training.fit import train_model
    from teachseg.training.prepare import write_config
    from teachseg.training.spec import ModelSpec

    started = time.perf_counter()
    run_dir.mkdir(parents=True, exist_ok=True)
    write_config(run_dir, cfg)
    # a run killed part-way (a long benchmark spans sittings) continues from its last checkpoint
    train_model(cfg, run_dir, records, data.val, data.test, spec=ModelSpec.teacher(cfg), resume=True)
    (run_dir / "bench.json").write_text(
        json.dumps({"key": key, "chosen": chosen, "n_train": len(records)}, indent=2)
    )
    print(
        f"  {run_dir.parent.name}/{run_dir.name}: {len(records)} masks, {time.perf_counter() - started:.0f} s",
        flush=True,
    )


def per_image(run_dir: Path, split: str) -> dict[str, float]:
    with (run_dir / f"{split}_per_image.csv").open(newline="") as fh:
        return {r["id"]: float(r["dice"]) for r in csv.DictReader(fh) if r["dice"] not in ("", "nan")}


def mean(values: Any) -> float:
    values = [v for v in values if not math.isnan(v)]
    return sum(values) / len(values) if values else math.nan


def late_best(run_dir: Path) -> str:
    s = json.loads((run_dir / "summary.json").read_text())
    best, epochs = s.get("best_epoch"), s.get("epochs")
    return (
        f"{run_dir.parent.name}/{run_dir.name} best at epoch {best} of {epochs}"
        if best and epochs and best > 0.9 * epochs
        else ""
    )


# ---------------------------------------------------------------------------------------------- one seed


def run_seed(base: dict[str, Any], seed: int, ledger: Path | None) -> dict[str, Path]:
    """Round 0 and every arm of one seed; returns the arm folders by arm name."""
    from teachseg.config import build_config
    from teachseg.data.datasets import Record
    from teachseg.training.prepare import prepare_data

    cfg0 = build_config(merge(base, {"name": f"seed{seed}/round0", "seed": seed}), "bench")
    round0 = cfg0.run_dir
    key0 = key_of(cfg0.to_dict())
    arms = {f"suggest-a{a:g}-d{d:g}": (a, d) for a, d in SUGGEST_GRID}
    arms |= {f"uncertainty-a{a:g}": (a, d) for a, d in UNCERTAINTY_GRID}
    arms["random"] = (math.nan, math.nan)
    folders = {name: round0.parent / name for name in arms}
    keys = {name: key_of(key0, name, arms[name]) for name in arms}
    done = {name: restore(ledger, folders[name], keys[name]) for name in arms}
    if all(done.values()):
        restore(ledger, round0, key0)
        return folders
    if not finished(round0, key0) or not (round0 / "model" / "model.safetensors").is_file():
        if not same_config(round0, cfg0):  # a killed round 0 of this config resumes from its last checkpoint
            shutil.rmtree(round0, ignore_errors=True)
        round0.mkdir(parents=True, exist_ok=True)
        data = prepare_data(cfg0, round0)
        train(cfg0, round0, data.train, data, key0, list(data.split.train))
        record(ledger, round0)
    data = prepare_data(cfg0, round0, resume=True)
    chosen = choices(round0, seed, arms, data)
    by_id = data.discovery.by_id()
    for name, ids in chosen.items():
        if done[name]:
            continue
        added = [Record(id=i, image=by_id[i].image, masks=by_id[i].masks, cls=by_id[i].cls) for i in ids]
        cfg = build_config(merge(base, {"name": f"seed{seed}/{name}", "seed": seed}), "bench")
        train(cfg, folders[name], [*data.train, *added], data, keys[name], ids)
        record(ledger, folders[name])
    return folders


def choices(round0: Path, seed: int, arms: dict[str, tuple[float, float]], data: Any) -> dict[str, list[str]]:
    """The images each arm adds: one scoring of the round-0 run's pool, then each arm's choice."""
    from teachseg.suggest.diversity import random_choice
    from teachseg.suggest.members import Members
    from teachseg.suggest.pool import run_pool
    from teachseg.suggest.rank import choose, score_images
    from teachseg.suggest.scoring import ScoreSettings
    from teachseg.suggest.source import open_source

    source = open_source(round0)
    pool = run_pool(source)
    budget = max(1, round((len(data.split.train) + len(data.split.label_dropped)) / 16))
    started = time.perf_counter()
    scored = score_images(Members(source.models), pool, ScoreSettings())
    left = ", ".join(f"{len(v)} {k}" for k, v in pool.excluded.items()) or "none"
    print(
        f"  seed {seed}: {len(data.split.train)} masks at round 0, pool {len(pool.candidates)} (left out: {left}), "
        f"budget {budget}; scored in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    out: dict[str, list[str]] = {}
    for name, (a, d) in arms.items():
        if name == "random":
            out[name] = [pool.candidates[i].id for i in random_choice(len(pool.candidates), budget, seed)]
        else:
            out[name] = [
                s.id
                for s in choose(
                    scored, ScoreSettings(area_exponent=a, diversity=d), budget, pool.groups, seed
                )
            ]
    return out


# ------------------------------------------------------------------------------------------- figures


def chosen_on_validation(folders: dict[int, dict[str, Path]], prefix: str) -> str:
    names = sorted({n for f in folders.values() for n in f if n.startswith(prefix)})
    vals = {n: mean(mean(per_image(f[n], "val").values()) for f in folders.values()) for n in names}
    best = max(names, key=lambda n: vals[n])
    tried = ", ".join(f"{n} {vals[n]:.4f}" for n in names)
    print(f"  {prefix}: chose {best} on mean validation Dice ({tried})", flush=True)
    return best


def paired(folders: dict[int, dict[str, Path]], a: str, b: str) -> tuple[float, float, float, int]:
    from teachseg.reports.stats import mean_per_image, paired_test

    diffs = []
    for f in folders.values():
        ta, tb = per_image(f[a], "test"), per_image(f[b], "test")
        diffs.append({i: ta[i] - tb[i] for i in ta.keys() & tb.keys()})
    p = paired_test(mean_per_image(diffs))
    return p.mean_diff, p.ci_low, p.ci_high, p.n


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.data.is_dir():
        fail(f"BUSI not found at {args.data}; pass --data DIR")
    set_threads(args.threads)
    seeds = args.seeds or ([21] if args.quick or args.smoke else SEEDS)
    size = args.image_size or (64 if args.smoke else 128)
    converge = converge_supported() and not args.smoke and args.epochs is None
    epochs = None if converge else (args.epochs or (2 if args.smoke else FALLBACK_EPOCHS))
    root = smoke_subset(args.data, args.out / "busi-smoke") if args.smoke else args.data
    stop = "converge" if converge else f"{epochs}ep"
    ledger = (
        None if (args.no_ledger or args.smoke) else (args.ledger or LEDGER / f"suggest-busi-{size}px-{stop}")
    )
    print(
        f"settings: data {root}, {size} px, seeds {seeds}, val 0.1, test 0.2, labels 1/16 -> 1/8, "
        f"LinkNet-ResNet34 from scratch, batch {args.batch_size}",
        flush=True,
    )
    if converge:
        print("training: train.stop converge (the methods issue's converged supervised training)", flush=True)
    else:
        why = (
            "--smoke"
            if args.smoke
            else "--epochs given"
            if args.epochs
            else "this teachseg has no train.stop"
        )
        print(
            f"training: fixed-epoch fallback, {epochs} epochs, best validation epoch kept ({why})", flush=True
        )
    base = base_config(args, root, size, epochs)
    folders = {seed: run_seed(base, seed, ledger) for seed in seeds}
    late = [x for f in folders.values() for x in map(late_best, f.values()) if x]
    if late:
        print(
            f"  note: best validation epoch in the last tenth, may still have been rising: {'; '.join(late)}"
        )

    arms = {
        "suggest": chosen_on_validation(folders, "suggest-"),
        "uncertainty": chosen_on_validation(folders, "uncertainty-"),
        "random": "random",
    }
    print("\narm | setting | " + " | ".join(f"test Dice seed {s}" for s in seeds) + " | mean | val mean")
    for arm, name in arms.items():
        tests = [mean(per_image(folders[s][name], "test").values()) for s in seeds]
        vals = [mean(per_image(folders[s][name], "val").values()) for s in seeds]
        print(
            f"{arm} | {name} | "
            + " | ".join(f"{t:.4f}" for t in tests)
            + f" | {mean(tests):.4f} | {mean(vals):.4f}"
        )
    r0 = [mean(per_image(Path(folders[s]["random"]).parent / "round0", "test").values()) for s in seeds]
    print("round 0 (1/16) | - | " + " | ".join(f"{t:.4f}" for t in r0) + f" | {mean(r0):.4f} | -")
    gain_u, lo_u, hi_u, n = paired(folders, arms["uncertainty"], "random")
    print(f"uncertainty_gain_over_random_at_eighth: {gain_u:.3f} [{lo_u:.3f}, {hi_u:.3f}] ({n} test images)")
    gain, lo, hi, n = paired(folders, arms["suggest"], "random")
    print(f"paired over {n} test images (each averaged over the {len(seeds)} seed(s) it is a test image in)")
    met = gain >= BAR and lo > 0
    print(
        f"bar: gain >= {BAR} with its interval above 0: {'met' if met else 'MISSED'} (gain {gain:.4f}, lower end {lo:.4f})"
    )
    print(f"suggest_gain_over_random_at_eighth: {gain:.3f} [{lo:.3f}, {hi:.3f}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
