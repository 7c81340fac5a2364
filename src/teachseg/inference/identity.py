"""What made a prediction: the model and the settings that decide a ``predict`` run's outputs.

Every ``NAME_summary.json`` carries the identity of the prediction that wrote it (``identity``, a hash of
``prediction``: the model's weights hash, architecture and normalisation, the engine, and every resolved
setting but the batch size); the output folder records the identity of its last run in
``predict_identity.json`` before the first input is predicted. ``--resume`` refuses a folder of another
identity, naming the keys that differ, with the wording and helpers of ``train --resume``
(:mod:`teachseg.training.identity`); it keeps only complete sets of the same identity.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from teachseg.errors import ConfigError
from teachseg.inference.options import ModelInfo, ResolvedOptions
from teachseg.inference.outputs import read_summary
from teachseg.runfiles import NewerSchemaError, PredictIdentity, RunFileError
from teachseg.training.identity import changed_keys, describe_changes, fields_hash

#: Resolved settings left out of the identity: those that cannot change the outputs (how many tiles go
#: through the model at once, whether the run resumes) and those derived from fields it holds
#: (``threshold_u8`` from ``threshold``, ``slide_mpp_source`` from ``slide_mpp``, ``image_size`` is
#: ``model.image_size``). The device is not a field either: the engine (``backend``) and its ``precision``
#: are what a device changes.
IGNORED_SETTINGS: tuple[str, ...] = ("batch_size", "resume", "threshold_u8", "slide_mpp_source", "image_size")

OVERWRITE_FIX = "pass --overwrite to predict every input again with this command, or choose another --out"


def prediction_fields(model: ModelInfo, ro: ResolvedOptions) -> dict[str, Any]:
    """The fields that decide the outputs of predicting with ``model`` and ``ro`` (JSON-normalised, sorted).

    The model is its weights (``model.weights_sha256``; its folder stands in when a predictor was built in
    code and no weights file is known), architecture and normalisation, plus the ONNX file's hash when one
    was given; the engine is ``backend``, ``precision`` and ``tta``; the rest are the resolved settings.
    """
    fields: dict[str, Any] = {
        "model.arch": model.arch,
        "model.encoder": model.encoder,
        "model.image_size": model.image_size,
        "model.weights_sha256": model.weights_sha256,
        "model.mean": model.mean,
        "model.std": model.std,
        "backend": model.backend,
        "precision": model.precision,
        "tta": model.tta,
    }
    if model.weights_sha256 is None:
        fields["model.folder"] = model.folder
    if model.onnx_sha256 is not None:
        fields["model.onnx_sha256"] = model.onnx_sha256
    fields.update((k, v) for k, v in asdict(ro).items() if k not in IGNORED_SETTINGS)
    return json.loads(json.dumps(dict(sorted(fields.items())), default=str))


def prediction_hash(fields: dict[str, Any]) -> str:
    """The identity of a prediction: a canonical hash of its :func:`prediction_fields`, 16 hex digits."""
    return fields_hash(fields)


def record_identity(out_dir: Path, fields: dict[str, Any]) -> Path:
    """Write ``out_dir/predict_identity.json``: this run's identity, before its first input is predicted."""
    return PredictIdentity(identity=prediction_hash(fields), prediction=fields).write(
        out_dir / PredictIdentity.FILE
    )


def folder_identity(out_dir: Path) -> dict[str, Any] | None:
    """The prediction fields of the last run in ``out_dir`` (None when none recorded one).

    Raises:
        ConfigError: the file is damaged (the fix: ``--overwrite``).
        NewerSchemaError: it was written by a newer teachseg.
    """
    path = out_dir / PredictIdentity.FILE
    if not path.is_file():
        return None
    try:
        return PredictIdentity.read(path).prediction
    except NewerSchemaError:
        raise
    except RunFileError as exc:
        raise ConfigError(
            f"cannot resume: {exc.message}, so the model and settings of the predictions here are unknown",
            path=path,
            fix=OVERWRITE_FIX,
        ) from None


def check_resumable(out_dir: Path, names: Sequence[str], fields: dict[str, Any]) -> None:
    """Refuse to resume predicting into ``out_dir`` when it holds predictions of another identity.

    The folder's ``predict_identity.json`` decides; a folder without one (written by an earlier teachseg,
    or by hand) is judged by the summaries of the inputs ``names``: one of another identity, or one that
    records none (an earlier teachseg's), is refused too, as nothing tells whether its outputs match.

    Raises:
        ConfigError: naming the keys that differ (old -> new) and the fix.
    """
    stored = folder_identity(out_dir)
    if stored is not None:
        _refuse_changes(out_dir / PredictIdentity.FILE, changed_keys(stored, fields))
        return
    for name in names:
        summary = read_summary(out_dir, name)
        if summary is None:  # none yet, or damaged: the input is predicted again
            continue
        path = out_dir / f"{name}_summary.json"
        if summary.prediction is None:
            raise ConfigError(
                "cannot resume: the outputs here were written by an earlier teachseg, which did not record "
                "the model and settings that made them, so --resume cannot tell whether they match this "
                "command",
                path=path,
                fix=OVERWRITE_FIX,
            )
        _refuse_changes(path, changed_keys(summary.prediction, fields))


def _refuse_changes(path: Path, changes: list[tuple[str, Any, Any]]) -> None:
    if changes:
        raise ConfigError(
            "cannot resume: the predictions here were made with another model or settings "
            f"({len(changes)} key(s) changed: {describe_changes(changes)}), so they would not match this "
            "command's",
            path=path,
            fix=f"restore those values, {OVERWRITE_FIX}",
        )
