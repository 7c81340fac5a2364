"""An external Teacher (``selftrain.teacher_model``): checked for leaks, then re-scored on this run's split.

Its own ``val_dice`` comes from another run's validation images, so it cannot be compared with a Student
scored on this run's. Before any replacement decision the Teacher is scored on this run's validation (and
test) images, and the result is written to ``gen0/`` like a trained Teacher's (``summary.json``,
``val_per_image.csv``, ``test_per_image.csv``, ``pred/``). A Teacher that trained on this run's
validation or test images, or on masks this run withholds with ``label_fraction``, is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from teachseg.config import Config
from teachseg.data.datasets import Record
from teachseg.errors import DataError, ModelError
from teachseg.models import META_FILE, ModelMeta
from teachseg.runfiles import TrainSummary
from teachseg.training.identity import file_sha256, records_by_hash
from teachseg.training.progress import Reporter


def teacher_leaks(
    meta: ModelMeta, val: Sequence[Record], test: Sequence[Record], withheld: Sequence[Record]
) -> dict[str, list[Record]]:
    """This run's held-out records the Teacher saw, by reason (empty lists when it is clean)."""
    seen = meta.trained_on
    images, masks, chose = (
        set(seen.get("images", ())),
        set(seen.get("masks", ())),
        set(seen.get("val_images", ())),
    )
    val_h, test_h, held_h = records_by_hash(val), records_by_hash(test), records_by_hash(withheld, masks=True)
    return {
        "validation images it trained on": [r for h, r in val_h.items() if h in images],
        "test images it trained on": [r for h, r in test_h.items() if h in images],
        "test images that chose its epoch": [r for h, r in test_h.items() if h in chose],
        "masks withheld by label_fraction it trained on": [r for h, r in held_h.items() if h in masks],
    }


def check_teacher_data(
    folder: Path, meta: ModelMeta, val: Sequence[Record], test: Sequence[Record], withheld: Sequence[Record]
) -> None:
    """Refuse a Teacher that saw this run's held-out images or withheld masks, naming the images."""
    if not meta.trained_on.get("images"):
        raise ModelError(
            "the teacher does not record which images it was trained on (it was saved by an older teachseg), "
            "so it cannot be checked against this run's validation and test images",
            path=folder / META_FILE,
            fix="train the teacher again with this teachseg, or unset selftrain.teacher_model to train one here",
        )
    leaks = {k: v for k, v in teacher_leaks(meta, val, test, withheld).items() if v}
    if not leaks:
        return
    parts = []
    for reason, recs in leaks.items():
        names = sorted({str(r.image) for r in recs})
        more = f" and {len(names) - 5} more" if len(names) > 5 else ""
        parts.append(f"{len(names)} {reason} ({', '.join(names[:5])}{more})")
    raise DataError(
        "the teacher saw images this run holds out, so its scores and pseudo-labels would be optimistic: "
        + "; ".join(parts),
        path=folder,
        fix="train the teacher on this run's split (same data.root, seed, fractions and label_fraction), "
        "or unset selftrain.teacher_model to train it here",
    )


def rescore_teacher(
    cfg: Config,
    folder: Path,
    out_dir: Path,
    val: Sequence[Record],
    test: Sequence[Record],
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Score the Teacher in ``folder`` on this run's validation and test images; write ``out_dir``.

    Reuses ``out_dir/summary.json`` when it was written for the same weights (a resumed run). Returns the
    data of the :class:`~teachseg.runfiles.TrainSummary` written there. ``reporter`` shows the scoring as the
    phase ``gen0 evaluation``.
    """
    import torch

    from teachseg.models import load_model_folder
    from teachseg.precision import resolve
    from teachseg.training.evaluate import (
        evaluate_records,
        summarise_rows,
        write_per_image_csv,
        write_pred_index,
    )

    weights_sha = file_sha256(folder / "model.safetensors")
    summary_path = out_dir / "summary.json"
    if summary_path.is_file():
        done = TrainSummary.read(summary_path)
        if done.teacher_sha256 == weights_sha:
            return done.to_data()
    out_dir.mkdir(parents=True, exist_ok=True)
    on_gpu = cfg.train.accelerator not in ("cpu",) and torch.cuda.is_available()
    model, meta = load_model_folder(folder, map_location="cuda" if on_gpu else "cpu")
    precision = str(resolve(cfg.train.precision, cfg.train.accelerator))
    mat = cfg.data.mat_variable
    reporter = reporter or Reporter()
    total, n_scored = len(val) + len(test), 0
    reporter.start("gen0 evaluation", total, "image")

    def on_images(n: int) -> None:
        nonlocal n_scored
        n_scored += n
        reporter.update(n_scored, f"{n_scored}/{total} images")

    # Scored as a Student of this run is (training/steps.py, evaluate_run): no TTA, this run's precision,
    # memory format and batch size, so the replacement rule compares like with like.
    same_as_students: dict[str, Any] = {
        "batch_size": cfg.data.batch_size,
        "tta": False,
        "precision": precision,
        "channels_last": cfg.train.channels_last,
        "on_images": on_images,
    }
    val_rows = evaluate_records(model, meta, val, mat, pred_dir=out_dir / "pred" / "val", **same_as_students)
    write_per_image_csv(out_dir / "val_per_image.csv", val_rows)
    val_stats = summarise_rows(val_rows)
    own = meta.summary
    scored: dict[str, Any] = dict(
        arch=meta.arch,
        encoder=meta.encoder,
        seed=own.get("seed"),
        epochs=own.get("epochs"),
        best_epoch=own.get("best_epoch"),
        train_loss=own.get("train_loss"),
        val_dice=val_stats["dice"],
        val_jaccard=val_stats["jaccard"],
        val=val_stats,
        test_dice=None,
        test_jaccard=None,
        n_val=len(val),
        n_test=len(test),
        image_size=meta.image_size,
        precision=precision,
        scoring={"tta": False, "precision": precision, "resize": "probabilities"},
        external_model=str(folder),
        teacher_sha256=weights_sha,
        own_val_dice=own.get("val_dice"),
        scored_on="this run's validation and test images (the teacher's own val_dice is own_val_dice)",
    )
    if test:
        test_rows = evaluate_records(
            model, meta, test, mat, pred_dir=out_dir / "pred" / "test", **same_as_students
        )
        write_per_image_csv(out_dir / "test_per_image.csv", test_rows)
        test_stats = summarise_rows(test_rows)
        scored.update(test=test_stats, test_dice=test_stats["dice"], test_jaccard=test_stats["jaccard"])
    write_pred_index(out_dir / "pred", [r.id for r in (*val, *test)])
    reporter.finish()
    summary = TrainSummary(**scored)
    summary.write(summary_path)
    return summary.to_data()
