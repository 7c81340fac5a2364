"""What a run folder is: the config fields that decide its numbers, and the data a model was trained on.

``run_identity.json`` (beside ``config.yaml``) stores a hash of the result-affecting config fields and the
fields themselves, so ``--resume`` and experiment reuse can refuse a folder made with another config and
name the keys that changed. Model folders record the content hashes of the images (and masks) they were
trained on, so a Teacher brought in from elsewhere can be checked against this run's held-out images.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from teachseg.config import Config
from teachseg.errors import ConfigError
from teachseg.io import read_json, write_json, write_text

RUN_IDENTITY = "run_identity.json"

#: Config keys (and whole sections) that cannot change a run's numbers, left out of its identity:
#: where outputs go (``name``, ``output_dir``), how fast data is loaded (``data.num_workers``,
#: ``data.cache_images``), what the terminal shows (``train.progress_bar``, ``train.log_every_n_steps``),
#: the experiment grid (each run's own architecture and seed are in ``model.arch`` and ``seed``), and
#: ``selftrain.skip_bad`` (without it a run with unreadable images stops before training, so a run that
#: trained saw the same images either way). Resume flags are CLI options, not config keys.
IGNORED_KEYS: tuple[str, ...] = (
    "name",
    "output_dir",
    "data.num_workers",
    "data.cache_images",
    "train.progress_bar",
    "train.log_every_n_steps",
    "experiment",
    "selftrain.skip_bad",
)


#: The study's loop settings (Teacher, Students, pseudo-labels and their weighting, the acceptance rule):
#: read by ``selftrain.method: teacher_student`` alone. The other methods never train on a pseudo-labelled
#: image (``pseudo_weight`` and ``confidence`` weigh only those), so these keys cannot change their numbers.
LOOP_KEYS: tuple[str, ...] = (
    "selftrain.teacher_model",
    "selftrain.student",
    "selftrain.pseudo_weight",
    "selftrain.confidence",
    "selftrain.tta",
    "selftrain.backend",
    "selftrain.min_delta",
    "selftrain.patience",
    "selftrain.max_generations",
)
#: Keys a run of each ``selftrain.method`` never reads, so a change to them does not make its folder stale:
#: raising ``selftrain.max_generations`` in an experiment retrains (or extends) its teacher_student runs
#: and reuses its supervised, Mean Teacher and FixMatch runs. They stay in ``run_identity.json`` as written.
INERT_KEYS: dict[str, tuple[str, ...]] = {
    "supervised": (*LOOP_KEYS, "selftrain.online"),
    "mean_teacher": LOOP_KEYS,
    "fixmatch": LOOP_KEYS,
    "teacher_student": ("selftrain.online",),
    "pretrain": (*LOOP_KEYS, "selftrain.online"),
}
#: The pretraining's settings: read only by runs that pretrain (``selftrain.method: pretrain``, or
#: ``model.encoder_weights: pretrain``), inert for every other run.
PRETRAIN_KEYS: tuple[str, ...] = ("pretrain",)
MAX_GENERATIONS = "selftrain.max_generations"

#: Keys added after run folders existed whose absence from a folder's record means another behaviour than
#: their default: a run recorded without ``train.stop`` trained for ``train.epochs`` epochs, so it is not the
#: run the new default (``converge``) makes.
LEGACY_VALUES: dict[str, Any] = {"train.stop": "epochs"}


def _under(key: str, prefixes: Iterable[str]) -> bool:
    return any(key == k or key.startswith(f"{k}.") for k in prefixes)


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{full}."))
        else:
            out[full] = value
    return out


def _ignored(key: str) -> bool:
    return _under(key, IGNORED_KEYS)


def config_fields(cfg: Config | dict[str, Any]) -> dict[str, Any]:
    """The result-affecting config fields, flattened to ``section.key`` (JSON-normalised values), with
    ``train.scheduler: auto`` resolved to the schedule it means (so ``auto`` with ``stop: epochs`` is the
    ``cosine`` an older folder recorded)."""
    data = cfg.to_dict() if isinstance(cfg, Config) else json.loads(json.dumps(cfg, default=str))
    fields = {k: v for k, v in sorted(_flatten(data).items()) if not _ignored(k)}
    if fields.get("train.scheduler") == "auto":
        stop = fields.get("train.stop", LEGACY_VALUES["train.stop"])
        fields["train.scheduler"] = "plateau" if stop == "converge" else "cosine"
    return fields


def fields_hash(fields: dict[str, Any]) -> str:
    """A canonical hash of identity fields (sorted keys, compact JSON), 16 hex digits."""
    blob = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def config_hash(cfg: Config | dict[str, Any]) -> str:
    """A canonical hash of :func:`config_fields` (sorted keys, JSON), 16 hex digits."""
    return fields_hash(config_fields(cfg))


def changed_keys(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(key, old value, new value)`` for every key whose value differs (missing keys read as absent)."""
    missing = "<absent>"
    return [
        (k, old.get(k, missing), new.get(k, missing))
        for k in sorted(set(old) | set(new))
        if old.get(k, missing) != new.get(k, missing)
    ]


def describe_changes(changes: Sequence[tuple[str, Any, Any]], limit: int = 8) -> str:
    """``key: old -> new, ...`` for an error message, at most ``limit`` keys (then "and N more")."""

    def show(v: Any) -> str:
        return v if isinstance(v, str) else json.dumps(v)

    text = ", ".join(f"{k}: {show(a)} -> {show(b)}" for k, a, b in changes[:limit])
    return text + (f" and {len(changes) - limit} more" if len(changes) > limit else "")


def stored_fields(run_dir: Path) -> dict[str, Any] | None:
    """The identity fields of the config that made ``run_dir``; None for a folder with no config yet.

    Folders written before ``run_identity.json`` existed fall back to their ``config.yaml``.
    """
    ident = run_dir / RUN_IDENTITY
    if ident.is_file():
        try:
            fields = read_json(ident).get("config")
        except (OSError, ValueError, AttributeError):
            fields = None
        if isinstance(fields, dict):
            return fields
        raise ConfigError(
            "not a valid run identity file",
            path=ident,
            fix="pass --overwrite to start the run again",
        )
    cfg_file = run_dir / "config.yaml"
    if cfg_file.is_file():
        try:
            data = yaml.safe_load(cfg_file.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            data = None
        if not isinstance(data, dict):
            raise ConfigError(
                "the config of this run cannot be read, so it cannot be resumed safely",
                path=cfg_file,
                fix="pass --overwrite to start the run again",
            )
        train = data.get("train")
        if isinstance(train, dict) and "stop" not in train:  # written before train.stop: fixed epochs
            train["stop"] = LEGACY_VALUES["train.stop"]
        try:  # fill in the defaults of keys the old file leaves out
            return config_fields(Config.model_validate(data))
        except ValueError:
            return config_fields(data)
    return None


def uses_pretraining(cfg: Config) -> bool:
    """Whether a run of ``cfg`` reads the ``pretrain`` section: it pretrains its encoder, or reuses its
    pretraining (``selftrain.method: pretrain``, or ``pretrain`` as encoder weights; :mod:`teachseg.pretrain`)."""
    weights = (cfg.model.encoder_weights, cfg.selftrain.student.encoder_weights)
    return cfg.selftrain.method == "pretrain" or "pretrain" in weights


def config_drift(run_dir: Path, cfg: Config) -> list[tuple[str, Any, Any]]:
    """The keys whose values differ between the config that made ``run_dir`` and ``cfg`` ([] if none),
    leaving out those that cannot change the numbers of a run of ``cfg.selftrain.method``.

    A key that a newer teachseg added (absent from the stored identity) counts as unchanged while it holds
    its default, which is the behaviour the older version had, or, for the keys of :data:`LEGACY_VALUES`,
    the value that means that behaviour. ``selftrain.max_generations`` alone does not
    make a teacher_student run stale when the run, resumed, is the run the new cap makes
    (:func:`cap_change_holds`).
    """
    old = stored_fields(run_dir)
    if old is None:
        return []
    defaults = config_fields(Config.model_validate({}))
    old = {**{k: LEGACY_VALUES.get(k, v) for k, v in defaults.items() if k not in old}, **old}
    inert = INERT_KEYS.get(cfg.selftrain.method, ())
    if not uses_pretraining(cfg):
        inert = (*inert, *PRETRAIN_KEYS)
    changes = [c for c in changed_keys(old, config_fields(cfg)) if not _under(c[0], inert)]
    if [key for key, _, _ in changes] == [MAX_GENERATIONS] and cap_change_holds(run_dir, cfg):
        return []
    return changes


def _lineage(run_dir: Path) -> Any:
    from teachseg.runfiles import Lineage, NewerSchemaError, RunFileError

    try:
        return Lineage.read(run_dir / Lineage.FILE)
    except NewerSchemaError:
        raise
    except RunFileError:  # none yet, or damaged: the resumed loop rewrites it
        return None


def needs_more_generations(run_dir: Path, cfg: Config) -> bool:
    """Whether the teacher_student loop in ``run_dir`` stopped at a generation cap below
    ``cfg.selftrain.max_generations`` while it could still go on: resuming it trains the next Students."""
    st = cfg.selftrain
    if st.method != "teacher_student":
        return False
    lineage = _lineage(run_dir)
    return (
        lineage is not None
        and lineage.cap_ended_loop(st.patience)
        and len(lineage.students()) < st.max_generations
    )


def cap_change_holds(run_dir: Path, cfg: Config) -> bool:
    """Whether the loop in ``run_dir``, made with another ``selftrain.max_generations``, is (once resumed) the
    run ``cfg``'s cap makes. The loop is deterministic and the cap only ends it, so it is unless the run
    trained more Students than the new cap allows, or the cap ended it, the new cap is higher, and a model
    it needs to go on (every generation's, to write each generation's pseudo-labels again) is missing
    (:func:`missing_loop_models`)."""
    lineage = _lineage(run_dir)
    if lineage is None:  # not a single Student recorded yet: the resumed loop follows the new cap
        return True
    if len(lineage.students()) > cfg.selftrain.max_generations:
        return False
    return not missing_loop_models(run_dir, cfg)


def missing_loop_models(run_dir: Path, cfg: Config) -> list[Path]:
    """The model weights a cap-ended teacher_student loop in ``run_dir`` lacks to continue up to
    ``cfg.selftrain.max_generations`` ([] when it need not continue, or has them all). A run restored from a
    benchmark ledger, which keeps no weights, lacks them all: it can be reported, not continued."""
    if not needs_more_generations(run_dir, cfg):
        return []
    lineage = _lineage(run_dir)
    weights = (
        run_dir / f"gen{g.generation}" / "model" / "model.safetensors"
        for g in lineage.generations
        if g.run_dir == f"gen{g.generation}"
    )
    return [w for w in weights if not w.is_file()]


def why_not_extended(run_dir: Path, cfg: Config, changes: Sequence[tuple[str, Any, Any]]) -> str:
    """For a run whose only change is a higher generation cap but which cannot be continued: why, naming the
    first missing weights file ("" otherwise), to append to a drift message."""
    if [key for key, _, _ in changes] != [MAX_GENERATIONS]:
        return ""
    missing = missing_loop_models(run_dir, cfg)
    if not missing:
        return ""
    more = f" and {len(missing) - 1} more are" if len(missing) > 1 else " is"
    return (
        f"; the generation cap ended its loop, and continuing it needs every generation's model, but "
        f"{missing[0]}{more} missing (a copy restored from a benchmark ledger keeps no weights), so the "
        f"loop can only be retrained from its first Teacher"
    )


def check_same_config(run_dir: Path, cfg: Config, *, action: str = "resume") -> None:
    """Refuse to ``action`` a run folder made with a config whose result-affecting fields differ."""
    changes = config_drift(run_dir, cfg)
    if changes:
        raise ConfigError(
            f"cannot {action} this run: it was made with a different config "
            f"({len(changes)} key(s) changed: {describe_changes(changes)}), so its results would not match "
            "the config.yaml beside them",
            path=run_dir,
            fix="restore those values, pass --overwrite to start the run again, or choose another name (--set name=...)",
        )


def record_config(run_dir: Path, cfg: Config) -> None:
    """Write ``config.yaml`` and ``run_identity.json`` (the config hash and the fields it covers)."""
    write_text(run_dir / "config.yaml", cfg.to_yaml())
    write_json(
        run_dir / RUN_IDENTITY,
        {"config_hash": config_hash(cfg), "ignored_keys": list(IGNORED_KEYS), "config": config_fields(cfg)},
    )


@lru_cache(maxsize=65536)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's content (cached per path, size and modification time)."""
    st = Path(path).stat()
    return _file_sha256(str(path), st.st_size, st.st_mtime_ns)


def mask_key(image_sha256: str, mask: Path) -> str:
    """A mask's identity as a training target: its content hash paired with its image's (two empty masks
    of the same size are the same file, but not the same annotation)."""
    return hashlib.sha256(f"{image_sha256}:{file_sha256(mask)}".encode()).hexdigest()


def records_by_hash(records: Iterable[Any], masks: bool = False) -> dict[str, Any]:
    """Records by the content hash of their image (with ``masks``: by :func:`mask_key` of each of their masks),
    to match them against the hashes a model or a pretrained encoder records as seen."""
    out: dict[str, Any] = {}
    for rec in records:
        image = file_sha256(rec.image)
        for key in [mask_key(image, m) for m in rec.masks] if masks else [image]:
            out[key] = rec
    return out


def training_data_hashes(train_records: Iterable[Any], val_records: Iterable[Any] = ()) -> dict[str, Any]:
    """What a model saw: content hashes of its training images, of the masks among its targets (see
    :func:`mask_key`), and of the validation images that chose its epoch. Stored as ``trained_on`` in the
    model's ``teachseg.json``."""
    images: set[str] = set()
    masks: set[str] = set()
    for rec in train_records:
        image = file_sha256(rec.image)
        images.add(image)
        masks.update(mask_key(image, m) for m in rec.masks or ())
    return {
        "images": sorted(images),
        "masks": sorted(masks),
        "val_images": sorted({file_sha256(r.image) for r in val_records}),
    }
