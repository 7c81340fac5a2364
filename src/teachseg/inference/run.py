"""Prediction of a cohort: inputs -> one pipeline per input -> output files, ``cohort.csv``, ``failures.csv``.

:func:`load_predictor` turns a model folder into a predictor; :func:`predict_paths` resolves the options once
(:mod:`.options`), finds the inputs and their output names (:mod:`.outputs`), and runs the slide or image
pipeline (:mod:`.pipelines`) on each through one :class:`~teachseg.inference.sliding.SlidingWindowInferer`,
reporting progress through callbacks (:mod:`.progress`).
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from teachseg.errors import DataError
from teachseg.inference.cohort import CohortTables, expand_lists, failure_from
from teachseg.inference.identity import check_resumable, prediction_fields, prediction_hash, record_identity
from teachseg.inference.options import ModelInfo, PredictOptions, ResolvedOptions, resolve_options
from teachseg.inference.outputs import (
    discover_inputs,
    is_complete,
    output_names,
    output_sizes,
    output_stamps,
    remove_stale_work,
    remove_unfinished_outputs,
)
from teachseg.inference.pipelines import predict_image, predict_slide
from teachseg.inference.predictor import Predictor
from teachseg.inference.progress import NoProgress, PredictProgress
from teachseg.inference.sliding import SlidingWindowInferer, TilePredictor, gaussian_blender
from teachseg.inference.stops import is_output_problem, output_stop
from teachseg.io import disk_full_error, is_disk_full
from teachseg.runfiles import PredictSummary
from teachseg.wsi.readers import open_slide

#: Single-level images no larger than this (either side) get ordinary PNG outputs.
ORDINARY_MAX_SIDE = 4096


def make_inferer(predictor: TilePredictor, ro: ResolvedOptions) -> SlidingWindowInferer:
    """The sliding-window inferer of a run: Gaussian-weighted tiles of the resolved size and overlap."""
    return SlidingWindowInferer(predictor, gaussian_blender(ro.threshold), ro.tile, ro.overlap, ro.batch_size)


def predict_input(
    path: Path,
    name: str,
    inferer: SlidingWindowInferer,
    model: ModelInfo,
    out_dir: Path,
    ro: ResolvedOptions,
    progress: PredictProgress | None = None,
) -> dict[str, Any]:
    """Predict one slide or image and write its outputs (the summary last); returns the summary's data
    (as written to ``NAME_summary.json``, a :class:`~teachseg.runfiles.PredictSummary`).

    The summary records the identity of this prediction (:mod:`.identity`) and the size of each output, so
    that an earlier summary left beside outputs this prediction replaced (a killed run) is not taken for
    theirs.
    """
    progress = progress or NoProgress()
    fields = prediction_fields(model, ro)
    start = time.perf_counter()
    with open_slide(path) as reader:
        if ro.slide_mpp is not None:
            reader.mpp = ro.slide_mpp
        w, h = reader.dimensions
        ordinary = not reader.is_slide_format and len(reader.levels) == 1 and max(w, h) <= ORDINARY_MAX_SIDE
        pipeline = predict_image if ordinary else predict_slide
        try:
            summary = pipeline(reader, name, inferer, model, out_dir, ro, progress)
        except OSError as exc:  # the blended raster in the hidden work folder found the disk full
            if is_disk_full(exc):
                raise disk_full_error(out_dir, f"predicting {name} into this folder") from exc
            raise
    summary.seconds = round(time.perf_counter() - start, 3)
    summary.identity = prediction_hash(fields)
    summary.prediction = fields
    summary.output_bytes = output_sizes(out_dir, summary.outputs)
    summary.write(out_dir / f"{name}_summary.json")
    return summary.to_data()


def load_predictor(
    model_dir: Path,
    backend: str = "torch",
    onnx_path: Path | None = None,
    device: str = "auto",
    precision: str = "auto",
    tta: bool = False,
    workdir: Path | None = None,
    tile: int | None = None,
) -> tuple[Predictor, ModelInfo]:
    """Load a model folder into a :class:`Predictor` on ``backend`` (``auto``, ``torch``, ``onnx``,
    ``openvino``; see :mod:`teachseg.inference.backends`), exporting ONNX to ``workdir`` when needed.

    ``tile``: the tile side OpenVINO is compiled for first (default: the model's ``image_size``).
    """
    from teachseg.inference.backends import build_predictor, check_backend
    from teachseg.models import load_model_folder
    from teachseg.training.identity import file_sha256

    backend = check_backend(backend)
    model, meta = load_model_folder(model_dir)
    weights_sha256 = file_sha256(model_dir / "model.safetensors")
    onnx_sha256 = None
    if backend == "onnx":
        if onnx_path is None:
            onnx_path = model_dir / "model.onnx"
            if onnx_path.is_file():
                onnx_sha256 = file_sha256(onnx_path)
            else:
                from teachseg.inference.export import export_onnx

                onnx_path = export_onnx(
                    model, (workdir or Path(tempfile.mkdtemp())) / "model.onnx", meta.in_channels
                )
        else:
            onnx_sha256 = file_sha256(onnx_path)
        predictor = Predictor(None, meta.mean, meta.std, tta=tta, onnx_path=onnx_path)
    else:
        predictor = build_predictor(
            model,
            meta.mean,
            meta.std,
            backend=backend,
            device=device,
            precision=precision,
            tta=tta,
            size=tile or meta.image_size,
        )
    info = ModelInfo(
        folder=str(model_dir),
        arch=meta.arch,
        encoder=meta.encoder,
        image_size=meta.image_size,
        mpp=meta.mpp,
        threshold=meta.threshold,
        backend=predictor.backend,
        precision=predictor.precision,
        tta=tta,
        extra={"summary": meta.summary} if meta.summary else {},
        weights_sha256=weights_sha256,
        onnx_sha256=onnx_sha256,
        mean=list(meta.mean),
        std=list(meta.std),
    )
    return predictor, info


@dataclass
class CohortPlan:
    """A ``predict`` run laid out before any input is predicted: the inputs, their output names, the tables
    and the resolved options (shared by the single-process loop and :mod:`.cluster`)."""

    files: list[Path]
    names: list[str]
    tables: CohortTables
    ro: ResolvedOptions
    total: int  # inputs, listed paths that do not exist included
    summaries: dict[int, dict[str, Any]] = field(default_factory=dict)
    identity: str = ""  # of this run's prediction (:mod:`.identity`), set by :func:`claim_folder`

    @property
    def is_cohort(self) -> bool:
        """More than one input: a failing input is recorded in ``failures.csv`` and the others go on."""
        return self.total > 1


def plan_cohort(
    model: ModelInfo,
    inputs: list[Path],
    out_dir: Path,
    opts: PredictOptions,
    log: Callable[[str], None] | None = None,
) -> CohortPlan:
    """Find the inputs (files, folders, path lists), name their outputs, record listed paths that do not
    exist, and resolve the options once."""
    from teachseg.io import ensure_writable_dir

    ensure_writable_dir(out_dir)
    listed = expand_lists(inputs)
    files = discover_inputs(listed.paths, out_dir) if listed.paths else []
    tables = CohortTables(out_dir)
    for missing in listed.missing:
        tables.fail(missing)
        if log:
            log(f"{missing.slide}: skipped: {missing.error}. Fix: {missing.fix}")
    ro = resolve_options(opts, model)
    if ro.resume:
        # a run killed while rewriting a table leaves its temporary file; the tables are rebuilt from the summaries
        for stale in tables.remove_stale():
            if log:
                log(f"removed {stale.name} left by an interrupted run (--resume)")
    if log and ro.slides_at_level0_as_they_are:
        log("the model records no resolution (mpp): slides are predicted at level 0 as they are")
    total = len(files) + len(listed.missing)
    return CohortPlan(files, output_names(files), tables, ro, total)


def claim_folder(plan: CohortPlan, model: ModelInfo, out_dir: Path) -> None:
    """Before the first input is predicted: with ``--resume``, refuse a folder whose predictions were made
    with another model or settings (:func:`~teachseg.inference.identity.check_resumable`); then record this
    run's identity in it (``predict_identity.json``).

    ``model`` is what the predictor runs (a cluster's workers may resolve another engine than the driver).

    Raises:
        ConfigError: ``--resume`` on a folder of another identity, naming the keys that differ.
    """
    fields = prediction_fields(model, plan.ro)
    if plan.ro.resume:
        check_resumable(out_dir, plan.names, fields)
    record_identity(out_dir, fields)
    plan.identity = prediction_hash(fields)


def reuse_finished(plan: CohortPlan, out_dir: Path, index: int, log: Callable[[str], None] | None) -> bool:
    """With ``--resume``: remove what a killed run left for input ``index``; when its outputs are complete
    and of this run's identity, keep its row (from its summary) and return True (not predicted again)."""
    name = plan.names[index]
    if not plan.ro.resume:
        return False
    # a killed run leaves its hidden work folder behind; nothing in it is reusable
    for stale in remove_stale_work(out_dir, name):
        if log:
            log(f"{name}: removed {stale.name} left by an interrupted run (--resume)")
    if not is_complete(out_dir, name, plan.identity):
        if log and is_complete(out_dir, name):  # left by the run this folder's identity replaced
            log(f"{name}: made with another model or settings, predicted again (--resume)")
        return False
    if log:
        log(f"{name}: complete, skipped (--resume)")
    summary = PredictSummary.read(out_dir / f"{name}_summary.json").to_data()
    plan.summaries[index] = summary
    plan.tables.add(name, summary, index=index, slide=plan.files[index])
    return True


def record_result(
    plan: CohortPlan, index: int, summary: dict[str, Any], log: Callable[[str], None] | None
) -> None:
    """Record a predicted input: its summary, its ``cohort.csv`` row (in input order) and its log lines."""
    name = plan.names[index]
    plan.summaries[index] = summary
    plan.tables.add(name, summary, index=index, slide=plan.files[index])
    if log:
        log(describe(name, summary))
        for warning in summary.get("warnings", []):
            log(f"{name}: warning: {warning}")


def record_failure(
    plan: CohortPlan,
    index: int,
    exc: BaseException,
    out_dir: Path,
    before: dict[str, tuple[int, int]],
    log: Callable[[str], None] | None,
) -> None:
    """Record an input that failed: remove what it left (``before``: its :func:`output_stamps` before it
    started; a set it replaced in part mixes two predictions, so all of it goes, while an earlier prediction
    it never touched stays) and give it its ``failures.csv`` row; a lone input's error is raised instead."""
    with contextlib.suppress(
        OSError
    ):  # the summary goes first: a set it cannot finish removing is not complete
        remove_unfinished_outputs(out_dir, plan.names[index], before)
    if not plan.is_cohort:
        raise exc
    # one unreadable slide should not cost the others: record it and go on
    failure = failure_from(plan.files[index], exc)
    plan.tables.fail(failure, index=index)
    if log:
        log(f"{plan.names[index]}: skipped: {failure.error}")


def end_cohort(
    plan: CohortPlan, out_dir: Path, log: Callable[[str], None] | None = None
) -> list[dict[str, Any]]:
    """Finish the tables; the summaries in input order.

    Raises:
        DataError: when some inputs failed (naming ``failures.csv``).
    """
    plan.tables.finish()
    earlier = plan.tables.earlier_failures
    if earlier and log:
        log(
            f"failures.csv keeps {len(earlier)} row(s) of inputs that failed in an earlier run and were not "
            "predicted since"
        )
    if plan.tables.failures:
        failed = [Path(f.slide).name for f in plan.tables.failures]
        raise DataError(
            f"{len(failed)} of {plan.total} inputs could not be read ({', '.join(failed[:5])}"
            f"{', ...' if len(failed) > 5 else ''}); the others were predicted; see failures.csv",
            path=out_dir,
            fix="fix or remove those inputs (failures.csv names each one and its fix) and run again with --resume",
        )
    return [plan.summaries[i] for i in sorted(plan.summaries)]


def predict_paths(
    predictor: TilePredictor,
    model: ModelInfo,
    inputs: list[Path],
    out_dir: Path,
    opts: PredictOptions,
    progress: PredictProgress | None = None,
    log: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Predict every input (a cohort: files, folders, text files listing paths) into ``out_dir``.

    With ``opts.resume``, complete inputs of this run's identity are skipped and a folder of another identity
    is refused (:mod:`.identity`). With more than one input, an input that fails is
    recorded in ``out_dir/failures.csv`` and the others go on; ``out_dir/cohort.csv`` gets a row per finished
    input (see :mod:`teachseg.inference.cohort`). ``progress`` hears of each input and its tiles.
    :func:`teachseg.inference.cluster.predict_paths_ray` does the same on a Ray cluster.

    Raises:
        DataError: after the others finished, when some inputs failed (naming ``failures.csv``).
    """
    progress = progress or NoProgress()
    plan = plan_cohort(model, inputs, out_dir, opts, log)
    claim_folder(plan, model, out_dir)
    inferer = make_inferer(predictor, plan.ro)
    progress.on_start(len(plan.files))
    for index, (path, name) in enumerate(zip(plan.files, plan.names, strict=True)):
        progress.on_item(index, name)
        if reuse_finished(plan, out_dir, index, log):
            continue
        before = output_stamps(out_dir, name)
        try:
            summary = predict_input(path, name, inferer, model, out_dir, plan.ro, progress)
        except Exception as exc:
            if is_output_problem(exc, out_dir):
                # a full or read-only output disk fails every later slide too: stop, keeping the finished ones
                raise output_stop(plan, index, exc, out_dir, before) from exc
            record_failure(plan, index, exc, out_dir, before, log)
            continue
        record_result(plan, index, summary, log)
    progress.on_finish()
    return end_cohort(plan, out_dir, log)


def describe(name: str, s: dict[str, Any]) -> str:
    if s.get("kind") == "slide":
        if s.get("no_tissue"):
            return f"{name}: no tissue found ({s['seconds']:.1f} s)"
        area = (
            f"{s['tumour_area_mm2']:.3f} mm^2"
            if s.get("tumour_area_mm2") is not None
            else f"{s['tumour_area_px']:.0f} px"
        )
        return f"{name}: tumour {area}, {s['polygons']} polygons, {s['tiles_predicted']} tiles, {s['seconds']:.1f} s"
    return f"{name}: tumour {100 * s['tumour_fraction']:.1f}% of the image ({s['seconds']:.1f} s)"
