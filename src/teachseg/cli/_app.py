"""The Typer application and options shared by every command (each defined once, reused everywhere).

Command modules import only light modules at top level so that ``teachseg --help`` stays fast; heavy
imports (torch, smp, Lightning) happen inside the command bodies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from teachseg.cli._logs import LogConsole

#: ``teachseg --help`` lists the commands in the order of the work; any command not named here comes after
#: them, in the order it was registered.
COMMAND_ORDER = (
    "demo",
    "data",
    "pretrain",
    "train",
    "selftrain",
    "experiment",
    "suggest",
    "report",
    "predict",
    "view",
    "export",
    "evaluate",
    "models",
)


class WorkOrderGroup(TyperGroup):
    """Lists the commands in :data:`COMMAND_ORDER` rather than the order their modules were imported."""

    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)
        rank = {name: i for i, name in enumerate(COMMAND_ORDER)}
        return sorted(names, key=lambda n: rank.get(n, len(rank)))  # stable: the others keep their order


app = typer.Typer(
    name="teachseg",
    cls=WorkOrderGroup,
    help="Breast-cancer segmentation that learns from few annotations: train, self-train, predict, report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Inspect and generate datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")

# Messages go to stderr, results to stdout; both follow --log-format (see teachseg.cli._logs).
console = LogConsole(stderr=True)
out = LogConsole()


@app.callback()
def _global_options(
    log_format: Annotated[
        str,
        typer.Option(
            "--log-format",
            help="Output style, anywhere on the command line: auto (rich on a terminal, plain full lines "
            "elsewhere), rich, plain, or json (one JSON object per line). Also TEACHSEG_LOG_FORMAT.",
        ),
    ] = "auto",
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            help="Also show Lightning's own lines (accelerator, model summary, why a fit stopped); anywhere "
            "on the command line. --debug implies it and shows tracebacks.",
        ),
    ] = False,
) -> None:
    """Breast-cancer segmentation that learns from few annotations: train, self-train, predict, report."""
    # teachseg.cli.run takes --log-format, --verbose and --debug off the command line before Typer parses it.


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
ProgressOpt = Annotated[
    bool,
    typer.Option(
        "--progress/--no-progress",
        help="Live progress bars on a terminal (--no-progress: whole lines only, as in a log file).",
    ),
]
ModelDirArg = Annotated[
    Path,
    typer.Argument(help="Model folder written by teachseg (config.json, model.safetensors, teachseg.json)."),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed.")]
LevelOpt = Annotated[int | None, typer.Option("--level", help="Pyramid level to work at (overrides --mpp).")]
SlideMppOpt = Annotated[
    float | None,
    typer.Option(
        "--slide-mpp",
        min=1e-6,
        help="The slides' level-0 resolution (um/px), for slides that record none (overrides the file's).",
    ),
]
IgnoreMppOpt = Annotated[
    bool,
    typer.Option(
        "--ignore-mpp",
        help="Work on slides at level 0 as they are, whatever their and the wanted um/px.",
    ),
]


def check_mpp_options(slide_mpp: float | None, ignore_mpp: bool) -> None:
    """``--slide-mpp`` and ``--ignore-mpp`` contradict each other (a ConfigError when both are given)."""
    if slide_mpp is not None and ignore_mpp:
        from teachseg.errors import ConfigError

        raise ConfigError(
            "--slide-mpp and --ignore-mpp contradict each other", fix="give one of them, not both"
        )


BackendOpt = Annotated[
    str,
    typer.Option(
        "--backend",
        help="Inference engine: auto (OpenVINO on a CPU when installed and the model runs on it, else torch), "
        "torch, onnx (onnxruntime) or openvino (pip install 'teachseg[openvino]').",
    ),
]
