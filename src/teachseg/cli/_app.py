"""The Typer application and options shared by every command (each defined once, reused everywhere).

Command modules import only light modules at top level so that ``teachseg --help`` stays fast; heavy
imports (torch, smp, Lightning) happen inside the command bodies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    name="teachseg",
    help="Breast-cancer segmentation that learns from few annotations: train, self-train, predict, report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Inspect and generate datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")

console = Console(stderr=True)
out = Console()

ConfigArg = Annotated[Path, typer.Argument(help="YAML config file (see configs/).", show_default=False)]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override a config key, e.g. --set train.epochs=5 (repeatable)."),
]
ResumeOpt = Annotated[
    bool, typer.Option("--resume", help="Continue an interrupted run from where it stopped.")
]
OverwriteOpt = Annotated[
    bool, typer.Option("--overwrite", help="Replace an existing run folder (earlier outputs are deleted).")
]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Output folder.")]
ModelDirArg = Annotated[
    Path,
    typer.Argument(help="Model folder written by teachseg (config.json, model.safetensors, teachseg.json)."),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed.")]
