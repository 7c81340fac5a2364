"""CLI commands: selftrain, experiment, demo."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from teachseg.cli._app import ConfigArg, OverwriteOpt, ProgressOpt, ResumeOpt, SetOpt, app, console, out

if TYPE_CHECKING:
    from teachseg.cli._display import CommandDisplay
    from teachseg.config import Config
    from teachseg.runfiles import SelftrainSummary

ExpOverwriteOpt = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Retrain earlier runs whose config differs from this one (their outputs are deleted).",
    ),
]
SkipBadOpt = Annotated[
    bool,
    typer.Option("--skip-bad", help="Leave out unreadable unlabelled images (recorded in lineage.json)."),
]


@app.command()
def selftrain(
    config: ConfigArg,
    set_: SetOpt = None,
    resume: ResumeOpt = False,
    overwrite: OverwriteOpt = False,
    skip_bad: SkipBadOpt = False,
    progress: ProgressOpt = True,
) -> None:
    """Learn from unlabelled images with selftrain.method: the study's Teacher -> soft pseudo-labels -> Student
    loop (default), Mean Teacher, FixMatch, or supervised only."""
    from teachseg.cli._display import CommandDisplay
    from teachseg.config import load_config
    from teachseg.selftrain.methods import planned_epochs, run_method
    from teachseg.training.fit import is_child_rank
    from teachseg.training.identity import check_same_config, record_config
    from teachseg.training.prepare import prepare_run_dir

    cfg = load_config(config, set_)  # checks every name (Teacher's and Student's) before anything else
    if skip_bad:
        cfg.selftrain.skip_bad = True
    run_dir = cfg.run_dir
    child = is_child_rank()
    if not child:
        prepare_run_dir(run_dir, resume=resume, overwrite=overwrite)
        if resume:  # a folder made with another config would mix two configs in one report
            check_same_config(run_dir, cfg)
        record_config(run_dir, cfg)
    epochs, bound = planned_epochs(cfg)
    enabled = progress and cfg.train.progress_bar and not child
    with CommandDisplay("selftrain", console, out, total=epochs, bound=bound, enabled=enabled) as display:
        summary = run_method(cfg, run_dir, resume=resume or child, console=None if child else display)
    if summary:
        print_selftrain(summary, run_dir)


def print_selftrain(summary: SelftrainSummary | dict[str, Any], run_dir: Path) -> None:
    """Print a self-training run's lineage table, the winner and why it stopped."""
    from rich import box
    from rich.table import Table

    from teachseg.runfiles import GenerationEntry, Lineage
    from teachseg.runfiles import SelftrainSummary as Summary

    result = Summary.from_data(summary, path=run_dir / Summary.FILE)
    lineage = Lineage.read(run_dir / Lineage.FILE)
    method = getattr(result, "method", None) or "teacher_student"
    title = "self-training lineage" if method == "teacher_student" else method
    table = Table(title=f"{title} ({run_dir.name})", box=box.SIMPLE_HEAD, padding=(0, 1))
    for col in ("gen", "model", "loss", "val Dice", "val IoU", "test Dice", "best ep.", "decision"):
        table.add_column(
            col, justify="right" if col not in ("model", "decision") else "left", min_width=len(col)
        )

    def f(v: object) -> str:
        return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    def short(g: GenerationEntry) -> str:
        if g.role != "student":
            return g.role  # teacher, or the method of a one-run method
        verdict = "kept" if g.accepted else "dropped"
        return verdict + (f" {g.gain:+.3f}" if isinstance(g.gain, float) else "")

    for g in lineage.generations:
        table.add_row(
            str(g.generation),
            str(g.arch),
            f(g.train_loss),
            f(g.val_dice),
            f(g.val_jaccard),
            f(g.test_dice),
            f(g.best_epoch),
            short(g),
        )
    out.print(table)
    final = result.final_generation
    if method != "teacher_student":
        out.print(f"model ({method}): {run_dir / result.final_model}", highlight=False)
    else:
        who = "the Teacher (generation 0)" if final == 0 else f"the Student of generation {final}"
        out.print(f"winner: {who}; final model: {run_dir / result.final_model}", highlight=False)
    if result.stopped_because:
        out.print(f"stopped: {result.stopped_because}", highlight=False)


@app.command()
def experiment(
    config: ConfigArg, set_: SetOpt = None, overwrite: ExpOverwriteOpt = False, progress: ProgressOpt = True
) -> None:
    """Run architectures x seeds (x methods x label fractions; finished runs are reused), then build the report.

    A finished or interrupted run is reused only if its config matches in every key that affects results;
    otherwise the command stops and lists the changed keys (--overwrite retrains those runs).
    """
    from teachseg.config import load_config
    from teachseg.selftrain.experiment import plan, run_experiment
    from teachseg.training.fit import is_child_rank

    cfg = load_config(config, set_)
    runs = plan(cfg)
    child = is_child_rank()  # a DDP rank > 0 runs the same fits in step, silently
    if not child:
        console.print(f"[bold]experiment[/] {cfg.name}: {len(runs)} runs -> {cfg.run_dir}", highlight=False)
    if child:
        run_experiment(cfg, overwrite=overwrite, console=None)
        return
    with _experiment_display("experiment", cfg, progress) as display:
        state = run_experiment(cfg, overwrite=overwrite, console=display)
    report = _build_report(cfg.run_dir)
    failed = [r["dir"] for r in state["runs"] if r["status"] != "done"]
    if report:
        out.print(f"report: {report}", highlight=False)
    if failed:
        console.print(f"[red]{len(failed)} run(s) failed[/]: {', '.join(failed)} (see experiment.json)")
        raise typer.Exit(1)


def _experiment_display(title: str, cfg: Config, progress: bool) -> CommandDisplay:
    """The live display of an experiment: its plan is every run's epochs (a bound with teacher_student)."""
    from teachseg.cli._display import CommandDisplay
    from teachseg.selftrain.experiment import planned_experiment_epochs

    epochs, bound = planned_experiment_epochs(cfg)
    enabled = progress and cfg.train.progress_bar
    return CommandDisplay(title, console, out, total=epochs, bound=bound, enabled=enabled)


def _build_report(run_dir: Path) -> Path | None:
    try:
        from teachseg.reports import build_report
    except ImportError:  # pragma: no cover - the reports package ships with teachseg
        return None
    return build_report(run_dir)


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Where the sample data and runs go.")] = Path(
        "demo-output"
    ),
    epochs: Annotated[int, typer.Option(help="Epochs for teacher and student.")] = 8,
    labelled: Annotated[int, typer.Option(help="Synthetic tiles with masks.")] = 24,
    unlabelled: Annotated[int, typer.Option(help="Synthetic tiles without masks.")] = 48,
    seed: Annotated[int, typer.Option(help="Seed of the data and the runs.")] = 42,
    overwrite: ExpOverwriteOpt = False,
    progress: ProgressOpt = True,
) -> None:
    """The whole cycle on built-in synthetic H&E tiles: Teachers, pseudo-labels, Students, report."""
    from teachseg.config import build_config
    from teachseg.data.synth import generate
    from teachseg.io import ensure_writable_dir
    from teachseg.runfiles import SelftrainSummary
    from teachseg.selftrain.experiment import run_experiment

    ensure_writable_dir(out_dir)
    data_dir = out_dir / "sample-data"
    if not (data_dir / "images").is_dir():
        console.print(f"generating synthetic H&E tiles in {data_dir}")
        generate(data_dir, n_labelled=labelled, n_unlabelled=unlabelled, size=128, seed=seed)
    cfg = build_config(
        {
            "name": "demo-experiment",
            "output_dir": str(out_dir),
            "seed": seed,
            "data": {
                "root": str(data_dir),
                "image_size": 128,
                "val_fraction": 0.25,
                "batch_size": 8,
                "num_workers": 0,
            },
            "model": {"arch": "linknet", "encoder": "resnet34", "encoder_weights": None},
            "train": {"stop": "epochs", "epochs": epochs, "lr": 2e-3},
            "selftrain": {"max_generations": 1},
            "experiment": {"archs": ["linknet", "fpn"], "seeds": [seed]},
        },
        "demo",
    )
    console.print(
        f"[bold]teachseg demo[/]: LinkNet and FPN (ResNet34), seed {seed}, {epochs} epochs each, "
        "teacher -> pseudo-labels -> student, on synthetic tiles",
        highlight=False,
    )
    with _experiment_display("demo", cfg, progress) as display:
        state = run_experiment(cfg, overwrite=overwrite, console=display)
    for run in state["runs"]:
        rdir = cfg.run_dir / run["dir"]
        if run["status"] == "done":
            print_selftrain(SelftrainSummary.read(rdir / SelftrainSummary.FILE), rdir)
    report = _build_report(cfg.run_dir)
    out.print(f"\nsample data: {data_dir}\nruns: {cfg.run_dir}", highlight=False)
    if report:
        out.print(f"report: {report}", highlight=False)
