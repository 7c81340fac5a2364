"""CLI commands (data): ``teachseg data check`` and ``teachseg data synth``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from teachseg.cli._app import (
    SeedOpt,
    app,  # noqa: F401  (the package imports this module to register commands)
    data_app,
    out,
)

DirArg = Annotated[
    Path, typer.Argument(help="Dataset folder (images/+masks/, BUSI class folders, or images only).")
]
MatVariableOpt = Annotated[
    str | None,
    typer.Option(
        "--mat-variable", help="Variable that holds the mask in .mat files (default: largest 2-D array)."
    ),
]
LayoutOpt = Annotated[
    str, typer.Option("--layout", help="Folder layout: auto, pairs, busi or unlabelled.", show_default=True)
]
JsonOpt = Annotated[Path | None, typer.Option("--json", help="Also write the summary as JSON to this file.")]
QuickOpt = Annotated[
    bool, typer.Option("--quick", help="Read image headers only (faster; misses truncated image files).")
]


@data_app.command("check")
def check(
    directory: DirArg,
    mat_variable: MatVariableOpt = None,
    layout: LayoutOpt = "auto",
    json_path: JsonOpt = None,
    quick: QuickOpt = False,
) -> None:
    """Find a dataset's images and masks, read them all, and report sizes, coverage and problems.

    Exits with 1 when problems were found, 0 otherwise.
    """
    from teachseg.data.discover import check_dataset, discover

    found = discover(directory, layout=layout)
    summary = check_dataset(found, mat_variable=mat_variable, decode_images=not quick)
    _print_summary(summary)
    if json_path is not None:
        from teachseg.io import write_json

        write_json(json_path, summary)
        out.print(f"summary written to {json_path}", highlight=False)
    if summary["problems"]:
        raise typer.Exit(code=1)


def _print_summary(s: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"dataset {s['root']}", show_header=False, title_justify="left")
    table.add_column("item", style="bold")
    table.add_column("value")
    table.add_row("layout", s["layout"])
    table.add_row("image/mask pairs", str(s["pairs"]))
    table.add_row("unlabelled images", str(s["unlabelled"]))
    if s["extra_masks"]:
        table.add_row("images with extra masks", f"{s['extra_masks']} (OR-merged)")
    if s["classes"]:
        table.add_row("classes", ", ".join(f"{c} {n}" for c, n in s["classes"].items()))
    h, w = s["image_size"]["height"], s["image_size"]["width"]
    if h and w:
        table.add_row(
            "image size (HxW)",
            f"min {h['min']}x{w['min']}, median {h['median']}x{w['median']}, max {h['max']}x{w['max']}",
        )
    cov = s["mask_coverage"]
    if cov["mean"] is not None:
        table.add_row(
            "mask coverage",
            f"mean {100 * cov['mean']:.1f}% foreground; {cov['empty']} of {cov['checked']} masks empty",
        )
    table.add_row("problems", str(len(s["problems"])))
    out.print(table)
    for line in s["problems"]:
        out.print(f"problem: {line}", highlight=False, markup=False, soft_wrap=True)


@data_app.command("synth")
def synth(
    out_dir: Annotated[Path, typer.Argument(help="Output folder (new, empty, or an earlier synthetic set).")],
    labelled: Annotated[int, typer.Option("--labelled", min=0, help="Tiles with masks.")] = 24,
    unlabelled: Annotated[int, typer.Option("--unlabelled", min=0, help="Tiles without masks.")] = 48,
    size: Annotated[int, typer.Option("--size", min=32, help="Tile side in pixels.")] = 256,
    seed: SeedOpt = 0,
) -> None:
    """Write a synthetic H&E-like dataset (images/, masks/, unlabelled/) for demos and tests."""
    from teachseg.data.synth import generate

    if labelled + unlabelled == 0:
        from teachseg.errors import ConfigError

        raise ConfigError("nothing to generate", fix="set --labelled and/or --unlabelled above 0")
    root = generate(out_dir, n_labelled=labelled, n_unlabelled=unlabelled, size=size, seed=seed)
    out.print(
        f"wrote {labelled} labelled tiles (images/ + masks/) and {unlabelled} unlabelled tiles (unlabelled/), "
        f"{size}x{size} px, seed {seed}, to {root} (synthetic data, see README.txt)",
        highlight=False,
    )
