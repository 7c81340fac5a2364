"""CLI commands: ``predict`` (slides and images) and ``export`` (ONNX); ``data tile`` is in :mod:`.data`.

Only light imports here; the inference package is imported inside the command bodies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from teachseg.cli._app import (
    BackendOpt,
    IgnoreMppOpt,
    LevelOpt,
    ModelDirArg,
    OutOpt,
    ProgressOpt,
    SlideMppOpt,
    app,
    check_mpp_options,
    console,
    out,
)

PredictMppOpt = Annotated[
    float | None,
    typer.Option(
        "--mpp",
        help="Resolution to predict at (um/px): read from the nearest level at least as fine and resized to "
        "it. Default: the model's.",
    ),
]
TileOpt = Annotated[
    int | None, typer.Option("--tile", help="Tile size in pixels. Default: the model's image_size.")
]
PredictResumeOpt = Annotated[
    bool,
    typer.Option(
        "--resume",
        help="Skip inputs whose outputs are complete and were made with this model and these settings; "
        "refuse a folder predicted with another model or other settings (naming what differs).",
    ),
]
PredictOverwriteOpt = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Predict every input again, replacing outputs made with any model or settings (as a run "
        "without --resume does).",
    ),
]


@app.command()
def predict(
    model_dir: ModelDirArg,
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="Slides, images, folders of them, or .txt files listing their paths (one a line).",
            show_default=False,
        ),
    ],
    out_dir: OutOpt,
    mpp: PredictMppOpt = None,
    level: LevelOpt = None,
    slide_mpp: SlideMppOpt = None,
    ignore_mpp: IgnoreMppOpt = False,
    tile: TileOpt = None,
    overlap: Annotated[float, typer.Option("--overlap", min=0.0, max=0.9, help="Tile overlap share.")] = 0.25,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Tiles per model call.")] = 8,
    tissue_mask: Annotated[
        bool, typer.Option("--tissue-mask/--no-tissue-mask", help="Predict only tiles that touch tissue.")
    ] = True,
    tta: Annotated[bool, typer.Option("--tta", help="Average with flipped predictions (3x slower).")] = False,
    threshold: Annotated[
        float | None, typer.Option("--threshold", min=0.0, max=1.0, help="Default: the model's.")
    ] = None,
    min_area: Annotated[
        float,
        typer.Option(
            "--min-area",
            min=0.0,
            help="GeoJSON: drop tumour regions and fill holes smaller than this (um^2; 64 px^2 without mpp).",
        ),
    ] = 500.0,
    simplify: Annotated[
        float,
        typer.Option(
            "--simplify", min=0.0, help="GeoJSON outline simplification tolerance, in pixels (0: exact)."
        ),
    ] = 0.5,
    vector_max_side: Annotated[
        int,
        typer.Option(
            "--vector-max-side",
            min=256,
            help="GeoJSON: outline the finest probability level no larger than this many pixels.",
        ),
    ] = 8192,
    resize: Annotated[
        bool | None,
        typer.Option(
            "--resize/--no-resize",
            help="Ordinary images: resize to the model's image_size (default: when the model has no mpp).",
            show_default=False,
        ),
    ] = None,
    backend: BackendOpt = "auto",
    onnx: Annotated[
        Path | None,
        typer.Option("--onnx", help="ONNX file for --backend onnx (default: exported on the fly)."),
    ] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    precision: Annotated[
        str,
        typer.Option(
            "--precision",
            help="auto (bf16 where the GPU or CPU supports it natively, else fp16 on GPU, fp32 on CPU), "
            "fp32, bf16, fp16; the same policy as training (teachseg.precision).",
        ),
    ] = "auto",
    resume: PredictResumeOpt = False,
    overwrite: PredictOverwriteOpt = False,
    progress: ProgressOpt = True,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            help="Predict on a Ray cluster, one task per slide: local (start one here), auto (the cluster "
            "this node joined) or its HOST:PORT. Needs pip install 'teachseg[cluster]'.",
        ),
    ] = None,
    ray_cpus_per_task: Annotated[
        float,
        typer.Option("--ray-cpus-per-task", min=0.01, help="--ray: CPUs (and torch threads) per slide."),
    ] = 1.0,
    ray_gpus_per_task: Annotated[
        float, typer.Option("--ray-gpus-per-task", min=0.0, help="--ray: GPUs per slide (0: on CPU).")
    ] = 0.0,
    ray_cpus: Annotated[
        int | None, typer.Option("--ray-cpus", min=1, help="--ray local: the cluster's CPUs (default: all).")
    ] = None,
) -> None:
    """Predict tumour on slides and images: probability TIFF, QuPath GeoJSON, overlay and summary per input."""
    import tempfile

    from teachseg.inference.options import PredictOptions
    from teachseg.inference.outputs import remove_stale_exports
    from teachseg.inference.run import load_predictor, predict_paths
    from teachseg.io import ensure_writable_dir

    check_mpp_options(slide_mpp, ignore_mpp)
    if resume and overwrite:
        from teachseg.errors import ConfigError

        raise ConfigError(
            "--resume and --overwrite contradict each other",
            fix="give --resume to keep the finished outputs, or --overwrite to predict them again",
        )
    ensure_writable_dir(out_dir)
    if resume:
        remove_stale_exports(out_dir)
    opts = PredictOptions(
        tile=tile,
        overlap=overlap,
        batch_size=batch_size,
        mpp=mpp,
        level=level,
        slide_mpp=slide_mpp,
        ignore_mpp=ignore_mpp,
        tissue_mask=tissue_mask,
        threshold=threshold,
        min_area_um2=min_area,
        simplify_px=simplify,
        vector_max_side=vector_max_side,
        resize=resize,
        resume=resume,
    )
    if ray is not None:
        from teachseg.inference import cluster

        cluster.import_ray()  # before loading anything: without Ray, say how to install it
        settings = cluster.RaySettings(ray, ray_cpus_per_task, ray_gpus_per_task, ray_cpus)
        device = cluster.worker_device(device, settings)
    with tempfile.TemporaryDirectory(prefix=".teachseg-export.", dir=out_dir) as tmp:
        predictor, info = load_predictor(
            model_dir,
            backend,
            onnx,
            device="cpu" if ray else device,
            precision=precision,
            tta=tta,
            workdir=Path(tmp),
            tile=tile,
        )
        with RichProgress(enabled=progress) as bar:
            if ray is not None:
                if backend == "onnx" and onnx is None:  # the file load_predictor found or exported
                    onnx = (
                        model_dir / "model.onnx"
                        if (model_dir / "model.onnx").is_file()
                        else Path(tmp) / "model.onnx"
                    )
                make = cluster.ModelFolderPredictor(model_dir, backend, onnx, device, precision, tta)
                log = lambda s: bar.display.result(s, highlight=False)  # noqa: E731
                cluster.predict_paths_ray(make, info, inputs, out_dir, opts, settings, progress=bar, log=log)
                return
            predict_paths(
                predictor,
                info,
                inputs,
                out_dir,
                opts,
                progress=bar,
                log=lambda s: bar.display.result(s, highlight=False),
            )


@app.command("export")
def export_cmd(
    model_dir: ModelDirArg,
    onnx: Annotated[Path, typer.Option("--onnx", help="ONNX file to write.")],
    opset: Annotated[int, typer.Option("--opset", help="ONNX opset.")] = 17,
    check: Annotated[
        bool, typer.Option("--check/--no-check", help="Compare onnxruntime with PyTorch.")
    ] = True,
) -> None:
    """Export a model folder to ONNX (dynamic batch, height and width; logits out)."""
    from teachseg.errors import ModelError
    from teachseg.inference.export import export_onnx, onnx_max_abs_diff
    from teachseg.io import ensure_writable_dir
    from teachseg.models import load_model_folder

    model, meta = load_model_folder(model_dir)
    ensure_writable_dir(onnx.parent if str(onnx.parent) else Path("."))
    export_onnx(model, onnx, meta.in_channels, opset=opset, size=meta.image_size)
    msg = f"wrote {onnx}"
    if check:
        diff = onnx_max_abs_diff(model, onnx, (1, meta.in_channels, meta.image_size, meta.image_size + 64))
        if diff > 1e-3:
            raise ModelError(
                f"onnxruntime disagrees with PyTorch (max abs difference {diff:.2e})",
                path=onnx,
                fix="try another --opset",
            )
        msg += f" (onnxruntime vs PyTorch max abs difference {diff:.1e})"
    out.print(msg, highlight=False)


class RichProgress:
    """``predict``'s part of the command's display: one bar over the inputs, each input's share spread over
    its tiles, and a bar over the current input's tiles (see :mod:`teachseg.cli._display`).

    Implements :class:`teachseg.inference.progress.PredictProgress`; draws nothing when not ``enabled`` or
    off a terminal.
    """

    def __init__(self, enabled: bool = True):
        from teachseg.cli._display import CommandDisplay

        self.display = CommandDisplay("predict", console, out, unit="input", enabled=enabled)
        self.total = 0
        self.name = ""

    def __enter__(self) -> RichProgress:
        self.display.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.display.__exit__(*exc)

    def on_start(self, total: int) -> None:
        self.total = total
        self.display.plan(total)

    def on_item(self, index: int, name: str) -> None:
        self.display.finish()
        self.display.set_done(index)
        self.name = name
        self.display.stage(f"{index + 1}/{self.total} {name}")

    def on_tiles(self, total: int) -> None:
        self.tiles, self.tiles_total = 0, total
        self.display.start("tiles", total, "tile", counts=1)

    def on_advance(self, n: int) -> None:
        self.tiles += n
        self.display.update(self.tiles, f"{self.tiles}/{self.tiles_total} tiles")

    def on_done(self, done: int, name: str) -> None:
        self.display.set_done(done)
        self.display.stage(f"{done}/{self.total} done, last {name}")

    def on_finish(self) -> None:
        self.display.finish()
        self.display.set_done(self.total)
