"""CLI commands (data): ``teachseg data check``, ``data synth`` and ``data tile`` (``tile``: deprecated alias)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from teachseg.cli._app import (
    IgnoreMppOpt,
    LevelOpt,
    OutOpt,
    SeedOpt,
    SlideMppOpt,
    app,
    check_mpp_options,
    console,
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
JsonOpt = Annotated[
    str | None,
    typer.Option(
        "--json", help="Write the report as JSON to this file; '-' prints only the JSON, for scripts."
    ),
]
QuickOpt = Annotated[
    bool, typer.Option("--quick", help="Read image headers only (faster; misses truncated image files).")
]
ImagesOpt = Annotated[
    Path | None,
    typer.Option("--images", help="Folder of the images (any name); with --masks. Like data.images_dir."),
]
MasksOpt = Annotated[
    Path | None,
    typer.Option("--masks", help="Folder of the masks, matched to images by name. Like data.masks_dir."),
]
StrictOpt = Annotated[
    bool,
    typer.Option("--strict", help="Exit with 1 when any risk is found (for CI), not only on problems."),
]


@data_app.command("check")
def check(
    directory: DirArg,
    mat_variable: MatVariableOpt = None,
    layout: LayoutOpt = "auto",
    json_path: JsonOpt = None,
    quick: QuickOpt = False,
    images: ImagesOpt = None,
    masks: MasksOpt = None,
    strict: StrictOpt = False,
) -> None:
    """Report a dataset's health before training: what was found, its problems and its risks.

    Layout and why, pairs, unlabelled images, groups, duplicates, mask look-alikes, classes, sizes, coverage.

    Exits with 1 when problems were found (with --strict: when any risk was found), 0 otherwise.
    """
    from teachseg.data.check import check_dataset
    from teachseg.data.discover import discover

    json_only = json_path == "-"
    found = discover(directory, layout=layout, images_dir=images, masks_dir=masks)
    summary = check_dataset(found, mat_variable=mat_variable, decode_images=not quick)
    quiet = out.quiet
    out.quiet = quiet or json_only  # '--json -': stdout holds the JSON alone
    try:
        _print_summary(summary)
        _print_groups_and_duplicates(found, summary, mat_variable)
        _print_problems_and_risks(summary)
    finally:
        out.quiet = quiet
    if json_only:
        typer.echo(json.dumps(summary, indent=2, default=str))
    elif json_path is not None:
        from teachseg.io import write_json

        write_json(Path(json_path), summary)
        out.print(f"summary written to {json_path}", highlight=False)
    if summary["problems"] or (strict and summary["risks"]):
        raise typer.Exit(code=1)


def _print_summary(s: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"dataset {s['root']}", show_header=False, title_justify="left")
    table.add_column("item", style="bold")
    table.add_column("value")
    table.add_row("layout", f"{s['layout']} ({s['layout_reason']})" if s["layout_reason"] else s["layout"])
    if s["images_dir"] is not None:
        table.add_row("folders", f"images {s['images_dir']}, masks {s['masks_dir']}")
    table.add_row("image/mask pairs", str(s["pairs"]))
    table.add_row("unlabelled images", str(s["unlabelled"]))
    if s["extra_masks"]:
        table.add_row("images with extra masks", f"{s['extra_masks']} (OR-merged)")
    if s["masks_skipped"]:
        table.add_row("masks in unlabelled folders", f"{s['masks_skipped']} (skipped: masks are not images)")
    like = s["mask_like"]
    if like["count"]:
        from rich.markup import escape

        where = escape(", ".join(f"{folder} ({n})" for folder, n in like["folders"].items()))
        table.add_row(
            "files that look like masks",
            f"[yellow]{like['count']} files look like masks; set data.masks_dir[/] (not used: {where})",
        )
    if s["classes"]:
        total = sum(s["classes"].values())
        table.add_row(
            "classes", ", ".join(f"{c} {n} ({100 * n / total:.0f}%)" for c, n in s["classes"].items())
        )
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


def _print_groups_and_duplicates(found: Any, summary: dict[str, Any], mat_variable: str | None) -> None:
    """Add ``groups`` and ``duplicates`` (exact sets, near pairs) to ``summary``, their risks to its
    ``risks``, and print them (issue 8). Hashes are cached, so a second check of a large folder is fast."""
    from teachseg.data.duplicate_report import duplicates_summary

    dups = duplicates_summary(found, mat_variable=mat_variable)
    risks = dups.pop("risks")
    summary["groups"] = dups["groups"]
    summary["duplicates"] = dups
    summary.setdefault("risks", []).extend(risks)

    def describe(e: dict[str, Any]) -> str:
        names = " = ".join(f"{i} ({c})" if c else i for i, c in zip(e["ids"], e["classes"], strict=True))
        if e["masks_agree"] is None:
            masks = "fewer than two masks"
        else:
            masks = "masks agree" if e["masks_agree"] else f"masks differ (Dice {e['mask_dice']:.2f})"
        return f"{names}: {masks}"

    by = f" (by {', '.join(dups['grouped_by'])})" if dups["grouped_by"] else " (one per image)"
    slides = f", {dups['slides']} slides from tile manifests" if dups["slides"] else ""
    say = lambda text: out.print(text, highlight=False, markup=False, soft_wrap=True)  # noqa: E731
    say(f"groups: {dups['groups']} of labelled images{by}{slides}")
    say(
        f"exact duplicates: {len(dups['exact'])} set(s); near duplicates: {len(dups['near'])} pair(s) "
        f"(perceptual hash within {dups['threshold']} of 64 bits); "
        f"{dups['hashed']} images hashed, {dups['decoded']} decoded (the others from the cache)"
    )
    for e in dups["exact"]:
        say(f"  exact: {describe(e)}")
    shown = 10
    for e in dups["near"][:shown]:
        say(f"  near ({e['distance']} bits): {describe(e)}")
    if len(dups["near"]) > shown:
        say(f"  ... and {len(dups['near']) - shown} more near pairs (--json lists them all)")


def _print_problems_and_risks(s: dict[str, Any]) -> None:
    for line in s["problems"]:
        out.print(f"problem: {line}", highlight=False, markup=False, soft_wrap=True)
    for line in s["risks"]:
        out.print(f"risk: {line}", highlight=False, markup=False, soft_wrap=True)
    if not s["risks"]:
        out.print("no risk found", highlight=False)


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


MppOpt = Annotated[
    float | None,
    typer.Option(
        "--mpp",
        help="Resolution of the tiles (um/px): read from the nearest level at least as fine and resized to it "
        "(anti-aliased). Default: level 0 as it is.",
    ),
]


@data_app.command("tile")
def tile(
    slide: Annotated[Path, typer.Argument(help="Slide to cut tiles from.", show_default=False)],
    out_dir: OutOpt,
    annotations: Annotated[
        Path | None,
        typer.Option("--annotations", help="QuPath-exported GeoJSON of tumour polygons (level 0)."),
    ] = None,
    size: Annotated[int, typer.Option("--size", min=16, help="Tile size in pixels.")] = 256,
    mpp: MppOpt = None,
    level: LevelOpt = None,
    slide_mpp: SlideMppOpt = None,
    ignore_mpp: IgnoreMppOpt = False,
    stride: Annotated[
        int | None, typer.Option("--stride", min=1, help="Step between tiles (default: --size).")
    ] = None,
    min_tissue: Annotated[
        float, typer.Option("--min-tissue", min=0.0, max=1.0, help="Smallest tissue share of a kept tile.")
    ] = 0.5,
    classes: Annotated[
        list[str] | None,
        typer.Option("--class", help="Annotation class names that are tumour (repeatable; default: all)."),
    ] = None,
    negative: Annotated[
        list[str] | None,
        typer.Option(
            "--negative-class", help="Annotation classes marking labelled non-tumour regions (repeatable)."
        ),
    ] = None,
) -> None:
    """Cut tissue tiles into images/ + masks/ (annotated) and unlabelled/ (no annotation), as `train` reads."""
    from teachseg.data.tile_slides import TileOptions, tile_slide

    check_mpp_options(slide_mpp, ignore_mpp)
    opts = TileOptions(
        size=size,
        stride=stride,
        mpp=mpp,
        level=level,
        slide_mpp=slide_mpp,
        ignore_mpp=ignore_mpp,
        min_tissue=min_tissue,
        classes=classes,
        negative=negative,
    )
    result = tile_slide(slide, out_dir, annotations, opts)
    resized = ", resized" if result["resampled"] else ""
    scale = f", {result['mpp']:g} um/px" if result["mpp"] else ""
    out.print(
        f"{slide.name}: {result['labelled']} labelled tiles, {result['unlabelled']} unlabelled tiles "
        f"(level {result['level']}{resized}{scale}) -> {out_dir}",
        highlight=False,
    )


@app.command("tile", hidden=True)
@functools.wraps(tile)
def tile_alias(*args: Any, **kwargs: Any) -> None:
    """``teachseg tile``: the deprecated name of ``teachseg data tile`` (prints a note, then tiles)."""
    # ``teachseg tile``, the old name of ``teachseg data tile``: same options, kept for one release
    console.print(
        "note: `teachseg tile` is deprecated and will be removed in the next release; use `teachseg data tile`",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    tile(*args, **kwargs)
