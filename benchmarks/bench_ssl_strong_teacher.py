"""Does the study's loop add anything over a well-trained supervised model? teacher_student at 1/4 labels on
BUSI, with a long supervised run as its Teacher.

``bench_ssl_busi.py --sweep --control`` found that the steps control of ``fixmatch[epoch-unl]`` (the same run
with ``unlabelled_weight`` 0: supervised training with about 3x the baseline's optimiser steps) scores above
every semi-supervised method, teacher_student included. The loop's own Teacher is the 40-epoch supervised run,
which was still rising. This benchmark gives the loop that stronger model as its Teacher
(``selftrain.teacher_model``; re-scored on the run's own split, checked for leaks) and asks whether a Student
trained on its soft pseudo-labels beats it, on validation (the loop's rule) and on test.

Protocol, per seed: the config of the benchmark's own teacher_student run at 1/4 (read from the ledger, so the
split, image size, epochs, augmentation and loss are the same), with ``selftrain.teacher_model`` set to that
seed's steps-control model and ``selftrain.max_generations`` (default 1: one Student, about 40 min per seed at
one thread on a 2-core CPU). The Teacher is not retrained: its scores here reproduce the steps control's.

The steps-control models come from ``bench_ssl_busi.py --sweep --control --fractions 0.25`` run with ``--out
DIR``: they are under ``DIR/ssl-fixmatch-epoch-unl-control/fixmatch_l0.25_linknet_seed*/gen0/model``. The
ledger keeps no weights, so a machine without those models can read the finished runs back from the ledger
(``benchmarks/results/ssl-busi-128px-40ep/ts-from-steps-control/``) but not train new ones.

Statistics as in ``bench_ssl_busi.py``: the unit is the test image, averaged over seeds, 95% bootstrap.

    python benchmarks/bench_ssl_strong_teacher.py --teachers bench-output/ssl-busi/ssl-fixmatch-epoch-unl-control
    python benchmarks/bench_ssl_strong_teacher.py     # reads the finished runs back from the ledger

Prints per seed the Teacher's and the Student's validation and test Dice and the loop's decision, then the paired
``student_minus_teacher`` (before acceptance) and, last, ``final_minus_steps_control_at_quarter: X.XXX [lo, hi]``
(the loop's final model against its Teacher, the steps control).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import BUSI, OUTPUT, fail, set_threads  # noqa: E402
from benchmarks._ledger import LEDGER, record  # noqa: E402
from benchmarks.bench_ssl_busi import generation_cell, paired_over_images  # noqa: E402

FRACTION = 0.25
#: the benchmark's own grid (128 px, 40 epochs) whose configs and steps controls this builds on
BENCH = LEDGER / "ssl-busi-128px-40ep"
GRID = "ts-from-steps-control"


def run_name(seed: int) -> str:
    return f"teacher_student_l{FRACTION:g}_linknet_seed{seed}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--teachers",
        type=Path,
        default=None,
        help="grid folder of the steps-control runs with their models (bench_ssl_busi.py's --out/"
        "ssl-fixmatch-epoch-unl-control); without it, finished runs are read back from the ledger",
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=[21, 42, 84])
    ap.add_argument("--max-generations", type=int, default=1, help="Students at most (default 1)")
    ap.add_argument("--data", type=Path, default=BUSI)
    ap.add_argument("--out", type=Path, default=OUTPUT / "ssl-busi" / GRID)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--no-ledger", action="store_true", help="neither read from nor record to the ledger")
    return ap.parse_args(argv)


def run_config(seed: int, teacher: Path, out: Path, data: Path, max_generations: int) -> dict[str, Any]:
    """The benchmark's teacher_student config of ``seed`` at 1/4, with ``teacher`` as its Teacher."""
    source = BENCH / "ssl" / run_name(seed) / "config.yaml"
    if not source.is_file():
        fail(f"{source} is missing: the ledger has no teacher_student run of seed {seed} at 1/4 to copy")
    raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    raw["name"] = run_name(seed)
    raw["output_dir"] = str(out)
    raw["data"]["root"] = str(data)
    raw["selftrain"]["teacher_model"] = str(teacher)
    raw["selftrain"]["max_generations"] = max_generations
    # the ledger's configs predate train.stop: they trained fixed epochs, and so must these Students
    raw["train"].setdefault("stop", "epochs")
    raw.pop("experiment", None)
    return raw


def train(raw: dict[str, Any]) -> Path:
    """``teachseg selftrain`` on ``raw``, resuming a folder this config started."""
    from teachseg.config import build_config
    from teachseg.selftrain.experiment import finished
    from teachseg.selftrain.methods import run_method
    from teachseg.training.identity import check_same_config, record_config
    from teachseg.training.prepare import prepare_run_dir

    cfg = build_config(raw, "bench")
    run_dir = cfg.run_dir
    if run_dir.is_dir() and finished(run_dir):
        check_same_config(run_dir, cfg)
        print(f"  {run_dir.name}: finished, reused", flush=True)
        return run_dir
    resume = run_dir.is_dir()
    prepare_run_dir(run_dir, resume=resume, overwrite=False)
    if resume:
        check_same_config(run_dir, cfg)
    record_config(run_dir, cfg)
    print(
        f"  {run_dir.name}: {'resuming' if resume else 'training'} (Teacher {raw['selftrain']['teacher_model']})"
    )
    run_method(cfg, run_dir, resume=resume)
    return run_dir


def final_cell(grid: Path) -> tuple[Any, dict[int, int]]:
    """The loop's final model per seed (the Teacher when no Student was accepted), as a Methods cell, and the
    final generation of each seed."""
    import json

    from teachseg.reports.sections.methods import Cell

    finals = {}
    for run in sorted(grid.glob(f"teacher_student_l{FRACTION:g}_*_seed*")):
        summary = run / "summary.json"
        if summary.is_file():
            finals[int(run.name.rsplit("seed", 1)[-1])] = int(
                json.loads(summary.read_text(encoding="utf-8")).get("final_generation") or 0
            )
    gens = {g: generation_cell(grid, FRACTION, g) for g in set(finals.values())}
    cell = Cell("teacher_student (final)", FRACTION)
    for seed, final in list(finals.items()):
        gen = gens[final]
        if seed not in gen.test:
            del finals[seed]
            continue
        cell.test[seed], cell.val[seed] = gen.test[seed], gen.val[seed]
        cell.per_image[seed] = gen.per_image[seed]
    return cell, finals


def report(grid: Path) -> int:
    teacher, student = generation_cell(grid, FRACTION, 0), generation_cell(grid, FRACTION, 1)
    final, finals = final_cell(grid)
    seeds = sorted(set(teacher.test) & set(final.test))
    if not seeds:
        fail(f"no finished run under {grid}")
    print(f"\nteacher_student at {FRACTION:g} with the steps control as its Teacher ({len(seeds)} seed(s)):")
    for seed in seeds:
        parts = [f"Teacher test {teacher.test[seed]:.3f} (val {teacher.val[seed]:.3f})"]
        if seed in student.test:
            verdict = "kept" if finals[seed] >= 1 else "dropped"
            parts.append(f"Student test {student.test[seed]:.3f} (val {student.val[seed]:.3f}, {verdict})")
        parts.append(f"final gen{finals[seed]}")
        print(f"  seed {seed}: " + ", ".join(parts), flush=True)
    if student.test:
        gain, lo, hi, n = paired_over_images(student, teacher)
        print(f"student_minus_teacher: {gain:.3f} [{lo:.3f}, {hi:.3f}] ({n} test images)")
    gain, lo, hi, n = paired_over_images(final, teacher)
    print(f"final_minus_steps_control_at_quarter: {gain:.3f} [{lo:.3f}, {hi:.3f}] ({n} test images)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    set_threads(args.threads)
    ledger = None if args.no_ledger else BENCH / GRID
    if args.teachers is not None:
        if not args.data.is_dir():
            fail(f"BUSI not found at {args.data}; pass --data DIR")
        for seed in args.seeds:
            model = args.teachers / f"fixmatch_l{FRACTION:g}_linknet_seed{seed}" / "gen0" / "model"
            if not (model / "model.safetensors").is_file():
                fail(
                    f"no steps-control model at {model}: run python benchmarks/bench_ssl_busi.py --sweep --control "
                    f"--fractions 0.25 --seeds {seed} --out DIR and pass --teachers DIR/ssl-fixmatch-epoch-unl-control"
                )
            train(run_config(seed, model.resolve(), args.out, args.data.resolve(), args.max_generations))
        if ledger is not None:
            record(args.out, ledger)
        return report(args.out)
    grid = ledger if ledger is not None and ledger.is_dir() else args.out
    return report(grid)


if __name__ == "__main__":
    raise SystemExit(main())
