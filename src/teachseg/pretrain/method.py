"""Using a pretrained encoder in a run: ``model.encoder_weights: pretrain`` and ``selftrain.method: pretrain``.

``model.encoder_weights: pretrain`` (like ``imagenet``, a name rather than a file) means "this run's in-domain
pretraining": the encoder pretrained on this run's training pool with the ``pretrain`` section, made on first
use and kept under ``output_dir/pretrain/`` (:func:`teachseg.pretrain.pool.cache_dir`), where every run with
the same seed, data, encoder and settings reuses it, whatever its label fraction or method. It works with every
method: a pretrained Teacher and its Students (``teacher_student``; a Student of the same encoder starts from
it too), Mean Teacher, FixMatch, supervised.

``selftrain.method: pretrain`` is the arm of an experiment that compares it: that pretraining, then supervised
fine-tuning of the whole model on the labelled images (:func:`finetune`, the supervised path of
:func:`teachseg.training.fit.train_model`).

A weights file with a ``pretrain.json`` beside it (``model.encoder_weights: runs/pretrain/...``) is checked
against the run's split before training, and refused when it saw a held-out image (:mod:`teachseg.pretrain.guard`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from teachseg.config import Config, ModelConfig, StudentConfig
from teachseg.errors import ConfigError
from teachseg.models import PRETRAINED_ENCODER
from teachseg.pretrain.guard import check_pretrained_encoder
from teachseg.pretrain.pool import (
    cache_dir,
    content_hashes,
    pool_records,
    pretrain_identity,
    resolved_settings,
)
from teachseg.pretrain.record import PretrainRecord
from teachseg.training.identity import uses_pretraining
from teachseg.training.prepare import PreparedData

#: The ``model.encoder_weights`` value naming this run's pretraining.
KEYWORD = "pretrain"

__all__ = [
    "KEYWORD",
    "ensure_pretrained",
    "finetune",
    "needs_split_check",
    "resolve_encoder_weights",
    "uses_pretraining",
]


def needs_split_check(cfg: Config) -> bool:
    """Whether ``cfg`` uses a pretrained encoder, which must be made or checked on the run's split."""
    weights = (cfg.model.encoder_weights, cfg.selftrain.student.encoder_weights)
    return uses_pretraining(cfg) or any(PretrainRecord.beside(w) is not None for w in weights)


def run_modality(cfg: Config, data: PreparedData) -> str:
    """``pretrain.modality``, or with ``auto`` the dataset's modality (``split.json``: decided once from all
    its images, so every seed and arm of a dataset pretrains with the same views)."""
    return data.modality(cfg.pretrain.modality)


def ensure_pretrained(cfg: Config, data: PreparedData, encoder: str, *, console: Any = None) -> Path:
    """The folder of this run's pretraining of ``encoder``: reused when finished, else made (or resumed).

    Raises:
        ConfigError: in an extra process of a multi-device run, when rank 0 has not made it yet.
    """
    from teachseg.pretrain.run import finished, pretrain_encoder
    from teachseg.training.fit import is_child_rank

    say = console.print if console is not None else (lambda *a, **k: None)
    pool = pool_records(data)
    settings = resolved_settings(cfg, run_modality(cfg, data))
    identity = pretrain_identity(encoder, cfg.seed, settings, content_hashes(pool))
    folder = cache_dir(cfg, encoder, cfg.seed, identity)
    done = finished(folder, identity)
    if done is not None:
        say(
            f"[dim]pretrained {encoder} reused: {folder} ({done.objective}, {done.cost()})[/]",
            highlight=False,
        )
        return folder
    if is_child_rank():
        raise ConfigError(
            "the pretraining this run needs is not finished, and an extra process of a multi-device run cannot "
            "make it",
            path=folder,
            fix="run `teachseg pretrain CONFIG` (one device) first, then this command",
        )
    say(
        f"[bold]pretraining[/] {encoder} ({settings['objective']}, {settings['epochs']} epochs, "
        f"{settings['modality']} views) on {len(pool)} training images -> {folder}",
        highlight=False,
    )
    pretrain_encoder(
        cfg, pool, folder, encoder=encoder, settings=settings, identity=identity, resume=True, console=console
    )
    return folder


def resolve_encoder_weights(cfg: Config, data: PreparedData, *, console: Any = None) -> Config:
    """``cfg`` with ``pretrain`` (and ``selftrain.method: pretrain``) turned into the weights file of this
    run's pretraining, made or reused; every pretrained encoder it names is checked against ``data``'s split.

    The config the run records keeps the name ``pretrain``: only the weights it trains from change.

    Raises:
        ConfigError: ``selftrain.method: pretrain`` with other weights, or an encoder that saw held-out images.
    """
    out = cfg.model_copy(deep=True)
    m, s = out.model, out.selftrain.student
    if out.selftrain.method == "pretrain":
        if m.encoder_weights not in (None, KEYWORD) and PretrainRecord.beside(m.encoder_weights) is None:
            raise ConfigError(
                f"selftrain.method pretrain fine-tunes an encoder pretrained on this run's images, but "
                f"model.encoder_weights is {m.encoder_weights!r}",
                fix="unset model.encoder_weights (or set it to pretrain, or a `teachseg pretrain` folder), or use "
                "selftrain.method supervised to fine-tune these weights",
            )
        if m.encoder_weights is None:
            m.encoder_weights = KEYWORD
    own_student = bool(s.arch or s.encoder)
    targets: list[tuple[str, ModelConfig | StudentConfig, str]] = [("model.encoder_weights", m, m.encoder)]
    if own_student:
        targets.append(("selftrain.student.encoder_weights", s, s.encoder or m.encoder))
    for key, section, encoder in targets:
        if section.encoder_weights == KEYWORD:
            folder = ensure_pretrained(out, data, encoder, console=console)
            section.encoder_weights = str(folder / PRETRAINED_ENCODER)
        check_pretrained_encoder(section.encoder_weights, encoder, data, key=key)
    return out


def finetune(
    cfg: Config, run_dir: Path, data: PreparedData, *, resume: bool = False, console: Any = None
) -> dict[str, Any] | None:
    """Supervised fine-tuning of the whole model from the pretrained encoder (``cfg`` resolved by
    :func:`resolve_encoder_weights`) on the labelled images, into ``run_dir``; its summary.

    It is the supervised path (:func:`teachseg.training.fit.train_model`): with ``train.stop: converge`` (the
    default) it trains until validation Dice stops improving, like the ``supervised`` arm, and its final model
    is scored on the selection images too.
    """
    from teachseg.training.fit import train_model
    from teachseg.training.spec import ModelSpec

    return train_model(
        cfg,
        run_dir,
        data.train,
        data.val,
        data.test,
        spec=ModelSpec.teacher(cfg),
        select_records=data.select,
        resume=resume,
        console=console,
        phase="gen0 fine-tuning",
        extra_summary={"method": "pretrain", "augmentation": "weak"},
    )
