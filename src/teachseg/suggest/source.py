"""What ``RUN_OR_MODEL`` is: a run folder (its models, config, split and dataset) or a bare model folder.

* A training run (``teachseg train``): its ``model/``.
* A self-training run (``teachseg selftrain``, or one run of an experiment): the final model first (it gives
  the features and the contact sheet), then, when the loop trained a Student, the other of Teacher
  (``gen0``) and Student (the final generation, or the last Student when none was accepted), so their
  disagreement is part of the uncertainty. The online methods and ``supervised`` have one model.
* A model folder (``config.json``, ``model.safetensors``, ``teachseg.json``): that model alone, and no split.

The dataset of a run is discovered again from the root its ``split.json`` records (else ``data.root``),
with the run's layout settings, so the split's image ids name the same files they named in training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from teachseg.errors import DataError, ModelError
from teachseg.models import META_FILE

#: Lists of image ids in ``split.json`` that are not held out (every other list of ids is: ``val``,
#: ``test``, and a selection split, whatever its name).
NOT_HELD_OUT = frozenset(
    {"train", "unlabelled", "label_dropped", "duplicates_dropped", "unlabelled_excluded", "grouped_by"}
)


@dataclass
class RunData:
    """A run's config, split (as written, every list of ids) and its dataset discovered again."""

    path: Path
    config: Any  # teachseg.config.Config
    split: dict[str, Any]
    discovery: Any  # teachseg.data.records.Discovery

    @property
    def train(self) -> list[str]:
        """Ids of the training images that keep their masks."""
        return [str(i) for i in self.split.get("train", [])]

    @property
    def held_out(self) -> dict[str, list[str]]:
        """Held-out ids by split name (``val``, ``test``, a selection split)."""
        return {
            k: [str(i) for i in v]
            for k, v in self.split.items()
            if k not in NOT_HELD_OUT and isinstance(v, list) and all(isinstance(i, str) for i in v) and v
        }

    @property
    def unlabelled(self) -> list[str]:
        """Ids of the run's unlabelled pool (label-dropped training images included)."""
        return [str(i) for i in self.split.get("unlabelled", [])]


@dataclass
class Source:
    """The models that rank, and the run they come from (None for a bare model folder)."""

    path: Path
    kind: str  #: ``train``, ``selftrain`` or ``model``
    models: list[Path]
    roles: list[str]
    run: RunData | None = None
    notes: list[str] = field(default_factory=list)


def is_model_folder(path: Path) -> bool:
    """Whether ``path`` holds a teachseg model folder (rather than a run)."""
    return (path / META_FILE).is_file() and (path / "config.json").is_file()


def _model_in(folder: Path) -> Path:
    """The model folder of a generation folder (an external Teacher's ``gen0`` is a model folder itself)."""
    return folder if is_model_folder(folder) else folder / "model"


def _need(model: Path, run: Path) -> Path:
    if not is_model_folder(model):
        raise ModelError(
            "the run has no complete model folder here (was it stopped before its best epoch was exported?)",
            path=model,
            fix=f"finish the run with --resume, or give a model folder instead of {run}",
        )
    return model


def selftrain_models(run_dir: Path) -> tuple[list[Path], list[str]]:
    """The final model first, then the other of Teacher and Student when the loop trained a Student."""
    from teachseg.runfiles import Lineage

    lineage = Lineage.read(run_dir / Lineage.FILE)
    folders = {g.generation: run_dir / (g.run_dir or f"gen{g.generation}") for g in lineage.generations}
    final = lineage.final_generation
    if final not in folders:
        raise DataError(
            f"lineage.json names generation {final} as final but lists no such generation",
            path=run_dir / Lineage.FILE,
            fix="finish the run with --resume",
        )
    models = [_need(_model_in(folders[final]), run_dir)]
    roles = [f"final model (gen{final})"]
    students = [g.generation for g in lineage.students() if is_model_folder(_model_in(folders[g.generation]))]
    other = 0 if final > 0 else (students[-1] if students else None)
    if other is not None and other != final and is_model_folder(_model_in(folders[other])):
        models.append(_model_in(folders[other]))
        roles.append(f"{'Teacher' if other == 0 else 'Student'} (gen{other})")
    return models, roles


def load_run_data(run_dir: Path) -> RunData:
    """The run's config, ``split.json`` and its dataset (discovered again, as in training)."""
    from teachseg.config import load_config
    from teachseg.data.discover import discover
    from teachseg.io import read_json

    split_path = run_dir / "split.json"
    if not split_path.is_file():
        raise DataError(
            "the run has no split.json, so its unlabelled images and held-out images are unknown",
            path=run_dir,
            fix="give a run folder written by teachseg train or selftrain, or a model folder and an image folder",
        )
    try:
        split = read_json(split_path)
    except (OSError, ValueError) as exc:
        raise DataError(f"split.json cannot be read ({exc})", path=split_path) from None
    if not isinstance(split, dict):
        raise DataError("split.json is not a split", path=split_path)
    cfg = load_config(run_dir / "config.yaml")
    root = Path(split["root"]) if split.get("root") else cfg.data.root
    if root is None or not Path(root).is_dir():
        raise DataError(
            "the run's dataset folder is not there any more",
            path=root or run_dir,
            fix="restore the dataset at that path (split.json's root), or give a model folder and an image folder",
        )
    d = cfg.data
    discovery = discover(
        Path(root), d.layout, d.unlabelled_dirs, images_dir=d.images_dir, masks_dir=d.masks_dir
    )
    known = {s.id for s in discovery.samples}
    missing = [i for key in ("train", "unlabelled") for i in split.get(key, []) if i not in known]
    if missing:
        raise DataError(
            f"the run's split names {len(missing)} image(s) that are no longer in its dataset "
            f"(e.g. {missing[0]}): the run and the images do not match",
            path=root,
            fix="restore those files, or train a new run on this folder",
        )
    return RunData(run_dir, cfg, split, discovery)


def open_source(path: Path) -> Source:
    """What ``path`` is (see the module docstring).

    Raises:
        DataError: not a run or model folder, an experiment folder, or a run whose files are missing.
        ModelError: the run has no model folder yet.
    """
    from teachseg.reports.runs import detect_kind

    path = Path(path)
    if is_model_folder(path):
        from teachseg.models import check_model_folder

        check_model_folder(path)
        return Source(path, "model", [path], ["model"])
    kind = detect_kind(path)
    if kind == "experiment":
        runs = sorted(c.name for c in path.iterdir() if c.is_dir() and (c / "lineage.json").is_file())
        raise DataError(
            "this is an experiment folder: it holds several runs, each with its own split and model",
            path=path,
            fix=f"give one of its runs, e.g. {path / runs[0]}" if runs else "give one of its run folders",
        )
    if kind == "selftrain":
        models, roles = selftrain_models(path)
    else:
        models, roles = [_need(path / "model", path)], ["model"]
    return Source(path, kind, models, roles, load_run_data(path))
