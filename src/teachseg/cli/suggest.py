"""CLI command: ``teachseg suggest RUN_OR_MODEL [INPUTS...] --budget N --out DIR`` (which images to annotate)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from teachseg.cli._app import IgnoreMppOpt, SeedOpt, SlideMppOpt, app, check_mpp_options, console, out

#: File suffixes that are whole slides whatever their size (a ``.tif`` is a slide when pyramidal or large).
SLIDE_ONLY_SUFFIXES = (".svs", ".ndpi", ".mrxs", ".scn", ".vms", ".vmu", ".bif", ".svslide")


def is_slide(path: Path) -> bool:
    """Whether a file given on the command line is a slide (ranked by regions) rather than an image, by the
    rule ``predict`` uses: a slide format, or a pyramidal or larger-than-4096-px TIFF."""
    from teachseg.inference.run import ORDINARY_MAX_SIDE
    from teachseg.wsi.readers import open_slide

    suffix = path.suffix.lower()
    if suffix in SLIDE_ONLY_SUFFIXES:
        return True
    if suffix not in (".tif", ".tiff") or not path.is_file():
        return False
    with open_slide(path) as reader:
        return len(reader.levels) > 1 or max(reader.dimensions) > ORDINARY_MAX_SIDE


@app.command("suggest")
def suggest(
    run_or_model: Annotated[
        Path,
        typer.Argument(
            help="A run folder (teachseg train/selftrain: its unlabelled images, its split for hygiene) or a "
            "model folder.",
            show_default=False,
        ),
    ],
    inputs: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Folders or images to rank instead of the run's unlabelled pool, or slides (ranked by "
            "square tissue regions). Required with a model folder.",
            show_default=False,
        ),
    ] = None,
    budget: Annotated[
        int, typer.Option("--budget", "-n", min=1, help="How many images (regions) to suggest.")
    ] = 20,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Output folder (default: RUN/suggestions for a run folder).",
            show_default=False,
        ),
    ] = None,
    seed: SeedOpt = 0,
    diversity: Annotated[
        float,
        typer.Option("--diversity", min=0.0, help="Weight of spreading the choice (0: uncertainty alone)."),
    ] = 1.0,
    area_exponent: Annotated[
        float,
        typer.Option("--area-exponent", min=0.0, help="Weight of the uncertain area in informativeness."),
    ] = 0.5,
    band: Annotated[
        tuple[float, float],
        typer.Option("--band", help="Mean probabilities counted as uncertain and tumour-like (low high)."),
    ] = (0.1, 0.9),
    border_px: Annotated[
        int,
        typer.Option(
            "--border-px", min=0, help="Uncertain rings thinner than 2*N+1 px (borders) do not count."
        ),
    ] = 2,
    tta: Annotated[
        bool,
        typer.Option("--tta/--no-tta", help="Flip views for the uncertainty (off: Teacher-Student only)."),
    ] = True,
    region_size: Annotated[
        int | None,
        typer.Option(
            "--region-size", min=32, help="Slides: region side in model pixels (default: its image_size)."
        ),
    ] = None,
    min_tissue: Annotated[
        float,
        typer.Option("--min-tissue", min=0.0, max=1.0, help="Slides: smallest tissue share of a region."),
    ] = 0.5,
    slide_mpp: SlideMppOpt = None,
    ignore_mpp: IgnoreMppOpt = False,
    device: Annotated[
        str, typer.Option("--device", help="auto, cpu or cuda (the ranking is repeatable on one device).")
    ] = "auto",
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Images per model call.")] = 8,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
) -> None:
    """Suggest which images (or slide regions) to annotate next: uncertain, diverse, never held out."""
    from teachseg.errors import ConfigError, DataError
    from teachseg.suggest.rank import suggest_images
    from teachseg.suggest.scoring import FLIPS, ScoreSettings
    from teachseg.suggest.source import open_source

    check_mpp_options(slide_mpp, ignore_mpp)
    settings = ScoreSettings(band, border_px, area_exponent, diversity, FLIPS if tta else ())
    source = open_source(run_or_model)
    if out_dir is None:
        if source.run is None:
            raise ConfigError("a model folder needs --out", fix="give --out DIR for the suggestions")
        out_dir = run_or_model / "suggestions"
    items = list(inputs or [])
    slides = [p for p in items if p.is_file() and is_slide(p)]
    if slides and len(slides) != len(items):
        raise DataError(
            "slides and images were given together",
            path=slides[0],
            fix="rank slides and image folders in two calls of teachseg suggest",
        )
    if len(source.models) == 1 and not tta:
        raise ConfigError(
            "--no-tta leaves one prediction per image, so there is no uncertainty to rank by",
            fix="keep --tta, or give a self-training run (its Teacher and Student disagree)",
        )
    with _Bar(progress and console.mode == "rich") as bar:
        if slides:
            from teachseg.suggest.slides import SlideOptions, suggest_slides

            opts = SlideOptions(region_size, min_tissue, slide_mpp, ignore_mpp)
            chosen = suggest_slides(
                source,
                slides,
                budget,
                out_dir,
                settings,
                opts,
                seed=seed,
                device=device,
                batch_size=batch_size,
                progress=bar,
            )
        else:
            chosen = suggest_images(
                source,
                items,
                budget,
                out_dir,
                settings,
                seed=seed,
                device=device,
                batch_size=batch_size,
                progress=bar,
            )
    _print(chosen, out_dir)


class _Bar:
    """A transient progress bar over the pool on stderr (a no-op when not ``enabled``)."""

    def __init__(self, enabled: bool):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("scoring"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            disable=not enabled,
            transient=True,
        )
        self.task: Any = None

    def __enter__(self) -> _Bar:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)

    def __call__(self, done: int, total: int) -> None:
        if self.task is None:
            self.task = self.bar.add_task("scoring", total=max(total, 1))
        self.bar.update(self.task, completed=done, total=max(total, 1))


def _print(chosen: list[Any], out_dir: Path) -> None:
    import json

    from rich.table import Table

    from teachseg.suggest.outputs import CONTACT_SHEET, SUGGEST_JSON, SUGGESTIONS_CSV

    table = Table(title=f"{len(chosen)} to annotate next", title_justify="left")
    for col in ("rank", "image", "score", "informativeness", "uncertainty", "uncertain area", "diversity"):
        table.add_column(col, justify="left" if col == "image" else "right")
    for s in chosen:
        table.add_row(
            str(s.rank),
            s.id,
            f"{s.score:.3f}",
            f"{s.informativeness:.3f}",
            f"{s.uncertainty:.4f}",
            f"{s.uncertain_area:.3f}",
            f"{s.diversity:.3f}",
        )
    out.print(table)
    data = json.loads((out_dir / SUGGEST_JSON).read_text(encoding="utf-8"))
    left = data.get("excluded") or {}
    if left:
        out.print(
            f"left out of the pool of {data['pool'] + data['excluded_count']}: "
            + "; ".join(f"{len(v)} {k}" for k, v in left.items()),
            highlight=False,
            soft_wrap=True,
        )
    for note in data.get("notes", []):
        console.print(f"note: {note}", highlight=False, markup=False, soft_wrap=True)
    for slide in data.get("slides", []):
        out.print(
            f"{slide['slide']}: {slide['regions']} region(s) in {out_dir / slide['geojson']} (class 'Annotate next'); "
            f"draw the tumour inside them in QuPath, export all annotations, then: {slide['tile_command']}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    out.print(
        f"wrote {out_dir / SUGGESTIONS_CSV}, {out_dir / CONTACT_SHEET} and {out_dir / SUGGEST_JSON}",
        highlight=False,
        soft_wrap=True,
    )
