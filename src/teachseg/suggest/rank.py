"""Rank a pool of images: score every candidate, choose the budget, write the outputs.

:func:`score_images` runs the members over the candidates (and the pooled features over the images that
already have masks); :func:`choose` makes the greedy choice of :mod:`.diversity` from those scores under any
settings (cheap: the benchmark tries several on one scoring); :func:`suggest_images` does both for a run or
a model folder and writes ``suggestions.csv``, ``suggest.json`` and the contact sheet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from teachseg.errors import ConfigError, DataError, ModelError
from teachseg.suggest.diversity import select
from teachseg.suggest.outputs import (
    CONTACT_SHEET,
    SUGGEST_JSON,
    SUGGESTIONS_CSV,
    Suggestion,
    write_contact_sheet,
    write_suggestions,
    write_summary,
)
from teachseg.suggest.pool import Pool, model_pool, run_pool
from teachseg.suggest.scoring import Parts, ScoreSettings, score_members
from teachseg.suggest.source import Source

Progress = Callable[[int, int], None]
#: largest side of the spread maps kept for the contact sheet
SPREAD_SIDE = 64


@dataclass
class Scored:
    """Every candidate's parts and features, and the features of the images that already have masks."""

    ids: list[str]
    images: list[Path]
    parts: list[Parts]
    features: np.ndarray
    anchors: np.ndarray
    two_models: bool = False


def small_spread(spread: np.ndarray) -> np.ndarray:
    """A spread map (the probabilities' standard deviation) as float16, at most :data:`SPREAD_SIDE` a side
    (block means)."""
    from PIL import Image

    h, w = spread.shape
    k = max(h, w) / SPREAD_SIDE
    f = np.asarray(spread, dtype=np.float32)
    if k > 1:
        size = (max(1, round(w / k)), max(1, round(h / k)))
        f = np.asarray(Image.fromarray(f, mode="F").resize(size, Image.Resampling.BOX))
    return f.astype(np.float16)


def score_batches(
    members: Any,
    batches: Iterable[Sequence[np.ndarray]],
    settings: ScoreSettings,
    resize: bool,
    progress: Progress | None = None,
    total: int = 0,
) -> tuple[list[Parts], np.ndarray]:
    """Parts and features of every image of ``batches`` (an iterable of lists of RGB arrays)."""
    parts: list[Parts] = []
    feats: list[np.ndarray] = []
    done = 0
    for batch in batches:
        out = members(batch, resize=resize)
        for k in range(len(batch)):
            p = score_members(out.probs[k], settings, out.models)
            p.spread = small_spread(p.spread)
            parts.append(p)
        feats.append(out.features)
        done += len(batch)
        if progress is not None:
            progress(done, total)
    return parts, (np.concatenate(feats) if feats else np.zeros((0, 0), np.float32))


def _image_batches(paths: Sequence[Path], size: int) -> Any:
    from teachseg.data.imageio import read_image

    for start in range(0, len(paths), size):
        yield [read_image(p) for p in paths[start : start + size]]


def anchor_features(members: Any, paths: Sequence[Path], batch_size: int) -> np.ndarray:
    """Pooled features of the images that already have masks (the first centres of the choice)."""
    feats = [members.features(batch) for batch in _image_batches(list(paths), batch_size)]
    return np.concatenate(feats) if feats else np.zeros((0, 0), np.float32)


def score_images(
    members: Any,
    pool: Pool,
    settings: ScoreSettings,
    batch_size: int = 8,
    progress: Progress | None = None,
) -> Scored:
    """Score every candidate of ``pool`` and take the features of its anchors."""
    paths = [s.image for s in pool.candidates]
    parts, feats = score_batches(
        members, _image_batches(paths, batch_size), settings, True, progress, len(paths)
    )
    anchors = anchor_features(members, pool.anchors, batch_size)
    return Scored([s.id for s in pool.candidates], paths, parts, feats, anchors, len(members.folders) > 1)


def choose(
    scored: Scored,
    settings: ScoreSettings,
    budget: int,
    groups: dict[str, str] | None = None,
    seed: int = 0,
) -> list[Suggestion]:
    """The greedy choice under ``settings`` (area exponent, diversity) from one scoring."""
    info = [p.informativeness(settings.area_exponent) for p in scored.parts]
    index = {i: k for k, i in enumerate(scored.ids)}
    by_index = {index[i]: g for i, g in (groups or {}).items() if i in index}
    anchors = scored.anchors if scored.anchors.size else None
    picks = select(
        info,
        scored.features,
        budget,
        diversity=settings.diversity,
        anchors=anchors,
        groups=by_index,
        seed=seed,
    )
    out = []
    for rank, pick in enumerate(picks, 1):
        p = scored.parts[pick.index]
        out.append(
            Suggestion(
                rank=rank,
                id=scored.ids[pick.index],
                image=scored.images[pick.index],
                score=pick.score,
                informativeness=pick.informativeness,
                uncertainty=p.uncertainty,
                uncertain_area=p.uncertain_area,
                disagreement=p.disagreement,
                diversity=pick.distance,
                spread=p.spread,
            )
        )
    return out


def open_pool(source: Source, inputs: Sequence[Path]) -> Pool:
    """The run's pool (or the inputs checked against the run), or the inputs of a bare model folder."""
    return run_pool(source, inputs) if source.run is not None else model_pool(source, inputs)


def check_budget(budget: int, pool: Pool, what: str = "images") -> None:
    """A budget the pool can meet, else a one-line error saying how large the pool is and why."""
    n = len(pool.candidates)
    if budget < 1:
        raise ConfigError(f"--budget is {budget}", fix="give --budget 1 or more")
    if budget > n:
        left = ", ".join(f"{len(v)} {k}" for k, v in sorted(pool.excluded.items()))
        raise ConfigError(
            f"the budget of {budget} is larger than the pool of {n} {what}"
            + (f" ({pool.n_excluded} left out: {left})" if left else ""),
            fix=f"give --budget {n} or less" if n else "add unlabelled images to rank",
        )


def check_tile_resolution(source: Source, members: Any, inputs: Sequence[Path]) -> None:
    """Refuse image folders of slide tiles cut at another resolution than the model works at."""
    from teachseg.data.tile_scale import tiles_mpp
    from teachseg.wsi.resolution import MPP_TOLERANCE

    model_mpp = members.meta.mpp
    if not model_mpp:
        return
    folders = [Path(p) for p in inputs if Path(p).is_dir()]
    if source.run is not None and not inputs:
        folders = [source.run.discovery.root]
    for folder in folders:
        # the scale the network sees these tiles at once resized to its image_size (tile mpp x size / image_size)
        mpp = tiles_mpp(folder, members.meta.image_size)
        if mpp and abs(mpp / model_mpp - 1) > MPP_TOLERANCE:
            raise DataError(
                f"these tiles reach the network at {mpp:g} um/px and the model works at {model_mpp:g} um/px: "
                "the model folder does not match the images",
                path=folder,
                fix=f"cut the tiles again with teachseg data tile --mpp {model_mpp:g}, or give the matching model",
            )


def check_model_matches_run(source: Source) -> None:
    """Refuse a run whose model did not train on the run's training images (the data moved or changed)."""
    from teachseg.models import check_model_folder
    from teachseg.training.identity import file_sha256

    run = source.run
    if run is None:
        return
    seen = set(check_model_folder(source.models[0]).trained_on.get("images", ()))
    by_id = run.discovery.by_id()
    sample = [by_id[i].image for i in sorted(run.train)[:16] if i in by_id]
    if seen and sample and not any(file_sha256(p) in seen for p in sample):
        raise ModelError(
            f"the model was not trained on this run's training images (none of {len(sample)} checked is "
            "among the files its teachseg.json records): the model folder does not match the images",
            path=source.models[0],
            fix=f"check that {run.discovery.root} holds the images the run trained on (split.json's root)",
        )


def summary(
    source: Source, pool: Pool, settings: ScoreSettings, budget: int, seed: int, **more: Any
) -> dict[str, Any]:
    """The data of ``suggest.json``."""
    from teachseg import __version__

    return {
        "source": str(source.path),
        "kind": source.kind,
        "models": [{"folder": str(f), "role": r} for f, r in zip(source.models, source.roles, strict=True)],
        "budget": budget,
        "seed": seed,
        "settings": settings.to_json(),
        "pool": len(pool.candidates),
        "anchors": len(pool.anchors),
        "excluded": {k: sorted(v) for k, v in sorted(pool.excluded.items())},
        "excluded_count": pool.n_excluded,
        "notes": [*source.notes, *pool.notes],
        "outputs": {"suggestions": SUGGESTIONS_CSV, "contact_sheet": CONTACT_SHEET},
        "teachseg_version": __version__,
        **more,
    }


def suggest_images(
    source: Source,
    inputs: Sequence[Path],
    budget: int,
    out_dir: Path,
    settings: ScoreSettings | None = None,
    *,
    seed: int = 0,
    device: str = "cpu",
    batch_size: int = 8,
    progress: Progress | None = None,
) -> list[Suggestion]:
    """Rank the pool of ``source`` (or ``inputs``), choose ``budget`` images and write the outputs to
    ``out_dir``; returns the suggestions, best first."""
    from teachseg.data.imageio import read_image
    from teachseg.io import ensure_writable_dir
    from teachseg.suggest.members import Members

    settings = settings or ScoreSettings()
    ensure_writable_dir(out_dir)
    pool = open_pool(source, inputs)
    check_budget(budget, pool)
    check_model_matches_run(source)
    members = Members(source.models, settings.flips, device)
    check_tile_resolution(source, members, inputs)
    scored = score_images(members, pool, settings, batch_size, progress)
    chosen = choose(scored, settings, budget, pool.groups, seed)
    write_suggestions(out_dir / SUGGESTIONS_CSV, chosen)
    write_contact_sheet(out_dir / CONTACT_SHEET, chosen, lambda s: read_image(s.image))
    write_summary(out_dir / SUGGEST_JSON, summary(source, pool, settings, budget, seed, images=True))
    return chosen
