"""CLI commands: train, evaluate, models, demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from teachseg.cli._app import (
    BackendOpt,
    ConfigArg,
    ModelDirArg,
    OutOpt,
    OverwriteOpt,
    ProgressOpt,
    ResumeOpt,
    SetOpt,
    app,
    console,
    out,
)


@app.command()
def train(
    config: ConfigArg,
    set_: SetOpt = None,
    resume: ResumeOpt = False,
    overwrite: OverwriteOpt = False,
    progress: ProgressOpt = True,
) -> None:
    """Train a model (the Teacher) on a labelled folder; keeps the epoch with the best validation Dice."""
    from teachseg.cli._display import CommandDisplay
    from teachseg.config import load_config
    from teachseg.pretrain.method import needs_split_check, resolve_encoder_weights
    from teachseg.training.fit import is_child_rank, train_model
    from teachseg.training.identity import check_same_config, record_config
    from teachseg.training.prepare import prepare_data, prepare_run_dir
    from teachseg.training.progress import known_epochs
    from teachseg.training.spec import ModelSpec

    cfg = load_config(config, set_)  # checks every name (arch, encoder, precision, ...) before anything else
    spec = ModelSpec.teacher(cfg)
    run_dir = cfg.run_dir
    child = is_child_rank()
    if not child:
        prepare_run_dir(run_dir, resume=resume, overwrite=overwrite)
        if resume:  # a folder made with another config would mix two configs in one report
            check_same_config(run_dir, cfg)
        record_config(run_dir, cfg)
    data = prepare_data(cfg, run_dir, resume=resume or child)
    # model.encoder_weights: pretrain (made or reused), or a pretrained encoder checked against this split
    if needs_split_check(cfg):
        cfg = resolve_encoder_weights(cfg, data, console=None if child else console)
        spec = ModelSpec.teacher(cfg)
    s = data.split
    if not child:
        console.print(
            f"[bold]teachseg train[/] {spec.name} seed {cfg.seed}: "
            f"{len(s.train)} train, {len(s.val)} val, {len(s.test)} test"
            + (f", {len(s.select)} selection" if s.select else "")
            + f" images -> {run_dir}",
            highlight=False,
        )
    display = CommandDisplay(
        "train",
        console,
        out,
        total=known_epochs(cfg),
        enabled=progress and cfg.train.progress_bar and not child,
    )
    with display:
        summary = train_model(
            cfg,
            run_dir,
            data.train,
            data.val,
            data.test,
            spec=spec,
            select_records=data.select,
            resume=resume or child,
            console=None if child else display,
            phase="Teacher",
        )
    if summary is None:
        return
    _print_summary(summary, run_dir, stop_told="Teacher" in display.stops)


def _print_summary(data: dict, run_dir: Path, *, stop_told: bool = False) -> None:
    """The summary table, why training stopped (unless the fit has said so: ``stop_told``), the files."""
    from rich.table import Table

    from teachseg.cli._display import fitted_line
    from teachseg.runfiles import TrainSummary
    from teachseg.training.progress import stop_lines

    summary = TrainSummary.from_data(data, path=run_dir / TrainSummary.FILE)
    table = Table(title=f"{summary.arch}-{summary.encoder}, seed {summary.seed}", show_header=True)
    for col in ("best epoch", "train loss", "val Dice", "val Jaccard", "test Dice", "images/s"):
        table.add_column(col, justify="right")

    def f(v: object) -> str:
        return "-" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)

    table.add_row(
        f(summary.best_epoch),
        f(summary.train_loss),
        f(summary.val_dice),
        f(summary.val_jaccard),
        f(summary.test_dice),
        f(summary.images_per_second),
    )
    out.print(table)
    # a converging fit said why it stopped as it stopped; one of fixed length, or reused, says it here
    if not stop_told and summary.steps is not None and (summary.stop or {}).get("stopped_by"):
        out.print(fitted_line(stop_lines("Teacher", summary.to_data()), out), highlight=False, markup=False)
    out.print(f"model: {run_dir / 'model'}\nsummary: {run_dir / 'summary.json'}", highlight=False)


@app.command()
def evaluate(
    model_dir: ModelDirArg,
    data_dir: Annotated[
        Path, typer.Argument(help="Folder of labelled images (any layout `data check` knows).")
    ],
    out_dir: OutOpt = Path("evaluation"),
    tta: Annotated[bool, typer.Option(help="Average flipped predictions.")] = False,
    mat_variable: Annotated[str | None, typer.Option(help="Variable of .mat masks.")] = None,
    save_predictions: Annotated[bool, typer.Option(help="Also write probability PNGs.")] = False,
    backend: BackendOpt = "auto",
) -> None:
    """Score a saved model on every labelled image of DATA_DIR: per-image CSV and a summary."""
    from teachseg.data.datasets import Record
    from teachseg.data.discover import discover
    from teachseg.errors import DataError
    from teachseg.io import ensure_writable_dir
    from teachseg.models import load_model_folder
    from teachseg.runfiles import EvaluateSummary
    from teachseg.training.evaluate import evaluate_records, summarise_rows, write_per_image_csv

    model, meta = load_model_folder(model_dir)
    found = discover(data_dir)
    records = [Record(s.id, s.image, s.masks, cls=s.cls) for s in found.labelled]
    if not records:
        raise DataError(
            "no image has a mask, so there is nothing to evaluate", path=data_dir, fix="add masks"
        )
    ensure_writable_dir(out_dir)
    from teachseg.inference.backends import check_backend
    from teachseg.inference.images import make_predictor

    predictor = make_predictor(model, meta, tta, backend=check_backend(backend))
    rows = evaluate_records(
        model,
        meta,
        records,
        mat_variable,
        tta=tta,
        pred_dir=out_dir / "pred" if save_predictions else None,
        predictor=predictor,
    )
    write_per_image_csv(out_dir / "per_image.csv", rows)
    stats = summarise_rows(rows)
    scored = {
        "model": str(model_dir),
        "data": str(data_dir),
        "tta": tta,
        "backend": predictor.backend,
        "inference_precision": str(predictor.precision),
        **stats,
    }
    EvaluateSummary.from_data(scored).write(out_dir / "summary.json")
    out.print(
        f"{stats['n']} images: Dice {stats['dice']:.4f}, Jaccard {stats['jaccard']:.4f}, "
        f"pooled Dice {stats['pooled_dice']:.4f}, precision {_fmt(stats['precision'])}, "
        f"recall {_fmt(stats['recall'])}",
        highlight=False,
    )
    out.print(
        f"per-image metrics: {out_dir / 'per_image.csv'}\nsummary: {out_dir / 'summary.json'}",
        highlight=False,
    )


@app.command()
def models(
    all_encoders: Annotated[
        bool, typer.Option("--encoders", help="Also list every encoder with its size.")
    ] = False,
) -> None:
    """List the architectures and encoders segmentation_models_pytorch offers, with parameter counts."""
    from rich.table import Table

    from teachseg.models import parameter_count
    from teachseg.names import STUDY_ARCHS, architectures, encoders

    table = Table(title="Architectures (encoder resnet34)")
    table.add_column("architecture")
    table.add_column("parameters", justify="right")
    table.add_column("in the study")
    for arch in architectures():
        try:
            n = f"{parameter_count(arch, 'resnet34') / 1e6:.1f} M"
        except Exception as exc:  # some decoders need specific encoders
            n = f"n/a ({type(exc).__name__})"
        table.add_row(arch, n, "yes (run by default)" if arch in STUDY_ARCHS else "")
    out.print(table)
    names = encoders()
    if all_encoders:
        enc = Table(title="Encoders (LinkNet decoder)")
        enc.add_column("encoder")
        enc.add_column("parameters", justify="right")
        for name in names:
            try:
                n = f"{parameter_count('linknet', name) / 1e6:.1f} M"
            except Exception as exc:
                n = f"n/a ({type(exc).__name__})"
            enc.add_row(name, n)
        out.print(enc)
    else:
        out.print(
            f"{len(names)} encoders (plus timm's as tu-<name>); list them with --encoders.", highlight=False
        )


def _fmt(value: object) -> str:
    """A mean that may be undefined (no image where it is defined) as 4 decimals or "n/a"."""
    if not isinstance(value, int | float) or value != value:
        return "n/a"
    return f"{value:.4f}"
