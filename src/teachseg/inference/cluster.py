"""A cohort on a Ray cluster: one Ray task per slide, the results streamed into the same output folder.

``teachseg predict ... --ray local|auto|HOST:PORT`` runs :func:`predict_paths_ray`. The driver lays the
cohort out exactly as the single-process run does (:func:`~teachseg.inference.run.plan_cohort`: inputs,
output names, ``--resume`` skipping finished slides of the same identity), asks one worker which engine
and precision the model resolves to there (the prediction's identity names them; a GPU worker's may differ
from the driver's), then submits one task per remaining slide with the resources asked for (``num_cpus``,
``num_gpus``). Each task loads the model once per worker process
(:class:`ModelFolderPredictor`, only paths and settings travel), predicts its slide with the same pipeline
into a hidden per-slide work folder in the output folder, and renames each output into place, the summary
last (:func:`~teachseg.inference.run.predict_input`). The driver takes results as they come
(``ray.wait``) and updates ``cohort.csv`` (rows in input order), ``failures.csv`` and the progress.

Ray does the scheduling and the retries: a task whose worker process or node dies is run again elsewhere
(``max_retries``, ``retry_exceptions=False``); the retry first removes the dead attempt's hidden files. A
slide whose worker died on every try is a ``failures.csv`` row and the driver removes what it left (its
hidden work folder, any output renamed into place). An error raised while predicting a slide (an
unreadable file) is not retried: it is a ``failures.csv`` row, its outputs removed, as in the
single-process run. A full or read-only output folder stops the run as there
(:func:`~teachseg.inference.stops.output_stop`): the other tasks are cancelled, the slides that finished are
kept in ``cohort.csv``, what the failed and cancelled slides wrote is removed, and one line names the folder
and the fix. Slides, model folder and output folder must be on storage every node sees.
"""

from __future__ import annotations

import os
import pickle
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from teachseg.errors import ConfigError, DataError
from teachseg.inference.options import ModelInfo, PredictOptions, ResolvedOptions
from teachseg.inference.outputs import (
    output_stamps,
    remove_stale_work,
    remove_unfinished_outputs,
)
from teachseg.inference.progress import NoProgress, PredictProgress
from teachseg.inference.sliding import TilePredictor

if TYPE_CHECKING:
    from teachseg.inference.run import CohortPlan

#: ``--ray`` values that are not an address.
LOCAL, AUTO = "local", "auto"
INSTALL_FIX = "pip install 'teachseg[cluster]'"


@dataclass(frozen=True)
class RaySettings:
    """Where the slides are predicted and with what resources per slide."""

    address: str = LOCAL  # "local": a cluster started in this process; "auto" or HOST:PORT: join one
    cpus_per_task: float = 1.0  # CPUs reserved per slide (and torch threads, at least 1)
    gpus_per_task: float = 0.0  # GPUs per slide (fractions share a GPU)
    local_cpus: int | None = None  # CPUs of a "local" cluster (None: all of this machine's)
    max_retries: int = 3  # times a slide whose worker died is run again

    @property
    def threads(self) -> int:
        """Torch threads of a task: its CPUs, at least one."""
        return max(1, int(self.cpus_per_task))


def import_ray() -> ModuleType:
    """The ``ray`` module, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs Ray, which is not installed", fix=INSTALL_FIX) from None
    return ray


def worker_device(device: str, settings: RaySettings) -> str:
    """The device a task predicts on: ``auto`` means a GPU only when the task reserves one (Ray hides the
    others), so CPU tasks never crowd onto a GPU they did not ask for."""
    if device != "auto":
        return device
    return "cuda" if settings.gpus_per_task > 0 else "cpu"


@dataclass(frozen=True)
class ModelFolderPredictor:
    """Builds a model folder's predictor on a worker; only paths and settings are sent over the cluster."""

    model_dir: Path
    backend: str = "torch"
    onnx_path: Path | None = None
    device: str = "cpu"
    precision: str = "auto"
    tta: bool = False

    def __call__(self) -> TilePredictor:
        from teachseg.inference.run import load_predictor

        predictor, _ = load_predictor(
            self.model_dir, self.backend, self.onnx_path, self.device, self.precision, self.tta
        )
        return predictor


@dataclass
class SlideResult:
    """What a task sends back: the slide's summary, or the error that stopped it."""

    index: int
    summary: dict[str, Any] | None = None
    error: BaseException | None = None
    fatal: bool = False  # the model could not be loaded: the same on every slide, so the run stops
    worker: str = ""  # host:pid that predicted it


#: The predictor of this worker process, by run (loaded once, reused by every slide the worker gets).
_PREDICTORS: dict[str, TilePredictor] = {}


def predict_one(
    run_id: str,
    make_predictor: Callable[[], TilePredictor],
    index: int,
    path: Path,
    name: str,
    model: ModelInfo,
    out_dir: Path,
    ro: ResolvedOptions,
    threads: int,
) -> SlideResult:
    """The body of a Ray task: predict input ``index`` into ``out_dir`` (outputs renamed into place, the
    summary last). Errors are returned, not raised, so that Ray retries only dead workers."""
    import torch

    from teachseg.inference.run import make_inferer, predict_input

    worker = f"{socket.gethostname()}:{os.getpid()}"
    torch.set_num_threads(threads)
    try:
        predictor = _worker_predictor(run_id, make_predictor)
    except Exception as exc:
        return SlideResult(index, error=_portable(exc), fatal=True, worker=worker)
    # the summary records what this worker runs (a GPU worker's precision may differ from the driver's)
    model = engine_model(model, predictor)
    remove_stale_work(out_dir, name)  # hidden files of an attempt whose worker died
    try:
        summary = predict_input(path, name, make_inferer(predictor, ro), model, out_dir, ro)
    except Exception as exc:
        return SlideResult(index, error=_portable(exc), worker=worker)
    return SlideResult(index, summary=summary, worker=worker)


def _worker_predictor(run_id: str, make_predictor: Callable[[], TilePredictor]) -> TilePredictor:
    """This worker process's predictor of run ``run_id``, built on first use."""
    if run_id not in _PREDICTORS:
        _PREDICTORS.clear()
        _PREDICTORS[run_id] = make_predictor()
    return _PREDICTORS[run_id]


def engine_model(model: ModelInfo, predictor: Any) -> ModelInfo:
    """``model`` with the engine and precision ``predictor`` runs at (a plain function keeps ``model``'s)."""
    return replace(
        model,
        backend=getattr(predictor, "backend", model.backend),
        precision=str(getattr(predictor, "precision", model.precision)),
    )


def worker_engine(
    run_id: str, make_predictor: Callable[[], TilePredictor], model: ModelInfo, threads: int
) -> ModelInfo | BaseException:
    """The body of the Ray task run before the slides: ``model`` with the engine a worker resolves (the
    predictor stays loaded for the slides this worker gets), or the error that stopped loading it."""
    import torch

    torch.set_num_threads(threads)
    try:
        return engine_model(model, _worker_predictor(run_id, make_predictor))
    except Exception as exc:
        return _portable(exc)


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling (teachseg's errors keep their path and fix), else its text."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


@contextmanager
def ray_session(ray: Any, settings: RaySettings) -> Iterator[None]:
    """Connect to (or start) the cluster for the run, and disconnect after; a session the caller opened
    (``ray.init`` already called) is used as it is and left open."""
    if ray.is_initialized():
        yield
        return
    try:
        if settings.address == LOCAL:
            ray.init(address="local", num_cpus=settings.local_cpus, include_dashboard=False)
        else:
            ray.init(address=settings.address)
    except ConnectionError as exc:
        raise ConfigError(
            f"cannot reach the Ray cluster at '{settings.address}' ({exc})",
            fix="start one with `ray start --head` (and `ray start --address HEAD:6379` on the other nodes), "
            "give its address, or use --ray local",
        ) from None
    try:
        yield
    finally:
        ray.shutdown()


def check_resources(ray: Any, settings: RaySettings) -> None:
    """Refuse a request no node could ever meet (Ray would wait for it forever)."""
    available = ray.cluster_resources()
    for key, wanted, option in (
        ("CPU", settings.cpus_per_task, "--ray-cpus-per-task"),
        ("GPU", settings.gpus_per_task, "--ray-gpus-per-task"),
    ):
        if wanted > available.get(key, 0):
            raise ConfigError(
                f"each slide asks for {wanted:g} {key} but the Ray cluster has {available.get(key, 0):g}",
                fix=f"lower {option} or add nodes with {key}s",
            )


def predict_paths_ray(
    make_predictor: Callable[[], TilePredictor],
    model: ModelInfo,
    inputs: list[Path],
    out_dir: Path,
    opts: PredictOptions,
    settings: RaySettings,
    progress: PredictProgress | None = None,
    log: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """:func:`~teachseg.inference.run.predict_paths` on a Ray cluster, one task per input.

    ``make_predictor`` builds the predictor on a worker (a picklable callable such as
    :class:`ModelFolderPredictor`); ``model`` describes it for the summaries. The outputs, ``cohort.csv``
    and ``failures.csv`` are those of the single-process run; finished inputs are skipped with
    ``opts.resume``; ``progress`` hears of each input as it finishes (``on_done``).

    Raises:
        ConfigError: Ray is not installed, the cluster cannot be reached, or no node has the resources.
        OutputError: the output folder is full or cannot be written (the other tasks are cancelled).
        DataError: after the others finished, when some inputs failed (naming ``failures.csv``).
    """
    from teachseg.inference.run import (
        claim_folder,
        end_cohort,
        plan_cohort,
        record_failure,
        record_result,
        reuse_finished,
    )
    from teachseg.inference.stops import is_output_problem, output_stop

    ray = import_ray()
    progress = progress or NoProgress()
    plan = plan_cohort(model, inputs, out_dir, opts, log)
    progress.on_start(len(plan.files))
    done = 0
    with ray_session(ray, settings):
        check_resources(ray, settings)
        task = ray.remote(predict_one).options(
            num_cpus=settings.cpus_per_task,
            num_gpus=settings.gpus_per_task,
            max_retries=settings.max_retries,
            retry_exceptions=False,
        )
        run_id, factory = uuid.uuid4().hex, ray.put(make_predictor)
        engine = ray.get(
            ray.remote(worker_engine)
            .options(num_cpus=settings.cpus_per_task, num_gpus=settings.gpus_per_task)
            .remote(run_id, factory, model, settings.threads)
        )
        if isinstance(engine, BaseException):  # the model cannot be loaded on the workers
            raise engine
        model = engine
        claim_folder(plan, model, out_dir)
        pending: dict[Any, int] = {}
        before: dict[int, dict[str, tuple[int, int]]] = {}  # outputs of each slide before it was sent
        for index, (path, name) in enumerate(zip(plan.files, plan.names, strict=True)):
            if reuse_finished(plan, out_dir, index, log):
                done += 1
                progress.on_done(done, name)
                continue
            before[index] = output_stamps(out_dir, name)
            ref = task.remote(run_id, factory, index, path, name, model, out_dir, plan.ro, settings.threads)
            pending[ref] = index
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            index = pending.pop(ready[0])
            try:
                result = ray.get(ready[0])
            except ray.exceptions.RayTaskError as exc:  # the task itself raised: a defect, not the slide
                _cancel(ray, pending)
                raise exc.as_instanceof_cause() from None
            except ray.exceptions.RayError as exc:  # the worker (or its node) died every time it was tried
                died = _died(plan.files[index], exc, settings)
                record_failure(plan, index, died, out_dir, before[index], log)
            else:
                if result.fatal:
                    _cancel(ray, pending)
                    raise result.error  # type: ignore[misc]
                if result.error is not None and is_output_problem(result.error, out_dir):
                    # a full or read-only output disk fails every later slide too: stop, keeping the finished
                    _settle_cancelled(ray, pending, plan, out_dir, before, log)
                    raise output_stop(plan, index, result.error, out_dir, before[index]) from result.error
                if result.error is not None:
                    record_failure(plan, index, result.error, out_dir, before[index], log)
                else:
                    record_result(plan, index, result.summary or {}, log)
            done += 1
            progress.on_done(done, plan.names[index])
    progress.on_finish()
    return end_cohort(plan, out_dir, log)


def _died(path: Path, exc: BaseException, settings: RaySettings) -> DataError:
    return DataError(
        f"the Ray worker predicting it died {settings.max_retries + 1} times ({type(exc).__name__})",
        path=path,
        fix="check the workers' memory and logs (`ray logs`), then run again with --resume",
    )


def _cancel(ray: Any, pending: dict[Any, int]) -> None:
    for ref in pending:
        ray.cancel(ref, force=True)


def _settle_cancelled(
    ray: Any,
    pending: dict[Any, int],
    plan: CohortPlan,
    out_dir: Path,
    before: dict[int, dict[str, tuple[int, int]]],
    log: Callable[[str], None] | None,
    timeout: float = 60.0,
) -> None:
    """Cancel the slides still pending after the output folder failed; once their tasks are over, keep
    those that finished in the meantime (``cohort.csv``; an unreadable slide gets its ``failures.csv`` row)
    and remove what the others wrote (hidden work folders, outputs half replaced), as the single-process run
    leaves no partial slide behind."""
    from teachseg.inference.run import record_failure, record_result
    from teachseg.inference.stops import is_output_problem

    _cancel(ray, pending)
    refs = list(pending)
    ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout) if refs else ([], [])
    finished = set()
    for ref in ready:
        try:
            result = ray.get(ref)
        except ray.exceptions.RayError:  # cancelled (or its worker died): nothing of it is kept
            continue
        if result.summary is not None and result.error is None:
            record_result(plan, pending[ref], result.summary, log)
            finished.add(pending[ref])
        elif result.error is not None and not result.fatal and not is_output_problem(result.error, out_dir):
            index = pending[ref]
            record_failure(plan, index, result.error, out_dir, before[index], log)  # an unreadable slide
            finished.add(pending[ref])  # its outputs are gone already
    for index in sorted(set(pending.values()) - finished):
        remove_unfinished_outputs(out_dir, plan.names[index], before[index])
