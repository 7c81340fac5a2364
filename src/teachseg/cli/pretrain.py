"""CLI command: pretrain (in-domain self-supervised pretraining of the encoder)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from teachseg.cli._app import ConfigArg, OverwriteOpt, ResumeOpt, SetOpt, app, console, out

PretrainOutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out",
        "-o",
        help="Output folder (default: output_dir/pretrain/ENCODER_seedN_ID, where runs of this config with "
        "model.encoder_weights: pretrain find it).",
    ),
]
SkipBadOpt = Annotated[
    bool, typer.Option("--skip-bad", help="Leave out unreadable images (listed in pretrain.json).")
]


@app.command()
def pretrain(
    config: ConfigArg,
    set_: SetOpt = None,
    out_dir: PretrainOutOpt = None,
    resume: ResumeOpt = False,
    overwrite: OverwriteOpt = False,
    skip_bad: SkipBadOpt = False,
) -> None:
    """Pretrain the encoder without labels on the run's training images, labelled and unlabelled (never a
    validation or test image): writes encoder.safetensors and pretrain.json, for model.encoder_weights."""
    import tempfile

    from teachseg.config import load_config
    from teachseg.models import PRETRAINED_ENCODER
    from teachseg.pretrain.method import run_modality
    from teachseg.pretrain.pool import (
        cache_dir,
        content_hashes,
        held_out_records,
        pool_records,
        pretrain_identity,
        resolved_settings,
    )
    from teachseg.pretrain.record import PretrainRecord
    from teachseg.pretrain.run import pretrain_encoder, require_lightly
    from teachseg.training.prepare import prepare_data, prepare_run_dir

    cfg = load_config(config, set_)  # checks every name before any image is read
    require_lightly()
    if skip_bad:
        cfg.selftrain.skip_bad = True
    with tempfile.TemporaryDirectory() as scratch:  # the split alone: its split.json is not kept
        data = prepare_data(cfg, Path(scratch), need_labels=False)
    pool = pool_records(data)
    encoder = cfg.model.encoder
    settings = resolved_settings(cfg, run_modality(cfg, data))
    identity = pretrain_identity(encoder, cfg.seed, settings, content_hashes(pool))
    folder = out_dir or cache_dir(cfg, encoder, cfg.seed, identity)
    prepare_run_dir(folder, resume=resume, overwrite=overwrite)
    console.print(
        f"[bold]teachseg pretrain[/] {encoder} ({settings['objective']}, {settings['epochs']} epochs, "
        f"{settings['modality']} views, {settings['image_size']} px) seed {cfg.seed}: {len(pool)} training "
        f"images ({len(data.split.train)} labelled, {len(data.split.unlabelled)} unlabelled); "
        f"{len(held_out_records(data))} held-out images never seen -> {folder}",
        highlight=False,
    )
    record = pretrain_encoder(
        cfg,
        pool,
        folder,
        encoder=encoder,
        settings=settings,
        identity=identity,
        resume=resume,
        console=console,
    )
    skipped = f", {len(record.skipped)} unreadable left out" if record.skipped else ""
    out.print(
        f"encoder: {folder / PRETRAINED_ENCODER}\nrecord: {folder / PretrainRecord.FILE}\n"
        f"{len(record.images)} images{skipped}, {record.steps} steps, final loss {record.final_loss}, "
        f"cost {record.cost()} ({record.device})\n"
        f"use it: model.encoder_weights: {folder} (or pretrain, for runs of this config)",
        highlight=False,
    )
