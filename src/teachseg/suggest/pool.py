"""The pool of candidates and its hygiene: what may be suggested, and what never is.

Candidates come from the run's unlabelled pool (``split.json``'s ``unlabelled``: images without a mask and
training images whose masks ``label_fraction`` withheld), or from the folders and images given on the
command line (a folder is discovered as a dataset: its unlabelled images are candidates, its images with a
mask are references like the run's).

Never suggested, with the reason recorded in ``suggest.json``:

* an image with the same pixels or the same picture (the project's duplicate fingerprints,
  :mod:`teachseg.data.duplicates`: SHA-256 of the pixels, perceptual hash within 10 bits) as a held-out
  image (validation, test, a selection split), or as an image that already has a mask;
* an image in the group of a held-out image (``group_regex`` patient, source slide of a tile), built by
  :func:`teachseg.data.grouping.build_groups` as the split built them;
* with a bare model folder (no split): a file the model trained on or that chose its epoch (``trained_on``
  in its ``teachseg.json`` records file SHA-256s only, so near-duplicates of its training images cannot be
  checked: ``suggest.json`` says so);
* an unreadable image.

Candidates that are duplicates of each other keep their duplicate group (:attr:`Pool.groups`), so the choice
takes at most one of them (:func:`teachseg.suggest.diversity.select`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from teachseg.data.records import Sample
from teachseg.errors import DataError
from teachseg.suggest.source import Source

DUP_HELD_OUT = "duplicate of a held-out image"
DUP_MASKED = "duplicate of an image with a mask"
HELD_OUT_GROUP = "in the group (patient, slide) of a held-out image"
HAS_MASK = "already has a mask"
MODEL_TRAINED = "the model trained on this file"
MODEL_CHOSE = "this file chose the model's epoch"
UNREADABLE = "unreadable"


@dataclass
class Pool:
    """The candidates that may be suggested, what was left out and why, and the images already masked."""

    candidates: list[Sample]
    excluded: dict[str, list[str]] = field(default_factory=dict)  #: reason -> ids
    anchors: list[Path] = field(default_factory=list)  #: training images with masks (first centres)
    groups: dict[str, str] = field(default_factory=dict)  #: candidate id -> duplicate group in the pool
    notes: list[str] = field(default_factory=list)

    def exclude(self, reason: str, ids: Sequence[str]) -> None:
        """Record ``ids`` as left out for ``reason``."""
        if ids:
            self.excluded.setdefault(reason, []).extend(sorted(ids))

    @property
    def n_excluded(self) -> int:
        """How many images were left out, all reasons together."""
        return sum(len(v) for v in self.excluded.values())


def input_samples(inputs: Sequence[Path]) -> tuple[list[Sample], list[Sample]]:
    """Candidates (images without a mask) and references (images with one) of folders and image files."""
    from teachseg.data.discover import discover
    from teachseg.data.imageio import IMAGE_SUFFIXES

    candidates: list[Sample] = []
    references: list[Sample] = []
    for path in inputs:
        path = Path(path)
        if path.is_dir():
            for s in discover(path).samples:
                # an input's id is its path: unique, and never confused with a run's dataset ids
                renamed = Sample(str(s.image), s.image, s.masks, s.cls)
                (references if s.labelled else candidates).append(renamed)
        elif path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            candidates.append(Sample(str(path), path))
        elif path.exists():
            raise DataError(
                "not an image or a folder of images",
                path=path,
                fix=f"give folders or images ({', '.join(sorted(IMAGE_SUFFIXES))}); slides are ranked on their own",
            )
        else:
            raise DataError("input not found", path=path, fix="check the path")
    ids = [s.id for s in candidates + references]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise DataError(f"two inputs give the image id {dup!r}", fix="give each folder or image once")
    return sorted(candidates, key=lambda s: s.id), references


def _hashes(samples: Sequence[Sample], roots: Sequence[Path]) -> tuple[dict, dict[str, str]]:
    """Duplicate fingerprints of ``samples`` (cached per dataset folder) and the unreadable ones."""
    from teachseg.data.duplicates import default_cache_file, hash_images

    hashes: dict = {}
    unreadable: dict[str, str] = {}
    by_root: dict[Path, dict[str, Path]] = {}
    for s in samples:
        root = next((r for r in roots if s.image.resolve().is_relative_to(r.resolve())), s.image.parent)
        by_root.setdefault(root, {})[s.id] = s.image
    for root, paths in sorted(by_root.items()):
        found = hash_images(paths, cache_file=default_cache_file(root))
        hashes.update(found.hashes)
        unreadable.update(found.unreadable)
    return hashes, unreadable


def apply_hygiene(
    pool: Pool,
    references: Sequence[Sample],
    held_out: set[str],
    roots: Sequence[Path],
    group_regex: str | None = None,
) -> None:
    """Leave out the candidates that duplicate or share a group with ``references`` (images with a mask;
    ``held_out`` are among them), and record the candidates' own duplicate groups."""
    from teachseg.data.duplicates import find_duplicates
    from teachseg.data.grouping import build_groups, slides_from_manifests

    everyone = [*pool.candidates, *references]
    hashes, unreadable = _hashes(everyone, roots)
    bad = [s.id for s in pool.candidates if s.id in unreadable]
    pool.exclude(UNREADABLE, bad)
    # whatever data.duplicates says for training: annotating a copy of a masked image is never worth it
    clusters = find_duplicates(hashes).clusters()
    masked = {s.id for s in references}
    cand = {s.id for s in pool.candidates} - set(bad)
    left: set[str] = set()
    for ids in clusters:
        members = set(ids)
        out = members & cand
        if not out:
            continue
        if members & held_out:
            pool.exclude(DUP_HELD_OUT, sorted(out))
            left |= out
        elif members & masked:
            pool.exclude(DUP_MASKED, sorted(out))
            left |= out
        elif len(out) > 1:
            for i in out:
                pool.groups[i] = min(out)
    pattern = re.compile(group_regex) if group_regex else None
    grouping = build_groups(everyone, pattern, slides_from_manifests(everyone))
    keys = grouping.keys
    held_keys = {keys[i] for i in held_out if i in keys}
    # an unlabelled image tied to several labelled groups keeps a key of its own: what it reaches counts too
    in_group = sorted(
        i for i in cand - left if keys.get(i) in held_keys or grouping.reaches.get(i, frozenset()) & held_keys
    )
    pool.exclude(HELD_OUT_GROUP, in_group)
    gone = left | set(in_group) | set(bad)
    pool.candidates = [s for s in pool.candidates if s.id not in gone]
    pool.groups = {i: g for i, g in pool.groups.items() if i not in gone}
    pool.notes.append(
        f"checked against {len(masked)} image(s) with a mask ({len(held_out)} held out) for exact and near "
        "duplicates (perceptual hash) and shared groups"
    )


def run_pool(source: Source, inputs: Sequence[Path] = ()) -> Pool:
    """The pool of a run: its unlabelled images, or ``inputs`` checked against its split."""
    run = source.run
    assert run is not None
    by_id = run.discovery.by_id()
    held = {i for ids in run.held_out.values() for i in ids}
    train = [by_id[i] for i in run.train if i in by_id]
    references = [*train, *(by_id[i] for i in sorted(held) if i in by_id)]
    roots = [run.discovery.root]
    if inputs:
        candidates, extra = input_samples(inputs)
        references = [*references, *extra]
        roots += [Path(p) for p in inputs if Path(p).is_dir()]
    else:
        candidates = [Sample(s.id, s.image, (), s.cls) for s in (by_id[i] for i in run.unlabelled)]
        if not candidates:
            raise DataError(
                "the run has no unlabelled images to suggest: every training image has a mask "
                f"({len(run.train)} training, {len(held)} held out)",
                path=run.path,
                fix="give a folder of unlabelled images after the run folder: teachseg suggest RUN FOLDER --budget N",
            )
    pool = Pool(candidates, anchors=[s.image for s in train])
    cfg = run.config.data  # its group_regex groups the inputs as the split grouped the run's images
    apply_hygiene(pool, references, held, roots, cfg.group_regex)
    return pool


def model_pool(source: Source, inputs: Sequence[Path]) -> Pool:
    """The pool of a bare model folder: the images of ``inputs`` without a mask, checked against the images
    with a mask among them and against the files the model records it trained on."""
    from teachseg.models import check_model_folder
    from teachseg.training.identity import file_sha256

    if not inputs:
        raise DataError(
            "a model folder has no unlabelled pool of its own",
            path=source.path,
            fix="give the images to rank after it (teachseg suggest MODEL FOLDER --budget N), or give the run folder",
        )
    candidates, references = input_samples(inputs)
    if not candidates:
        raise DataError(
            f"no image without a mask among the inputs ({len(references)} image(s) have masks)",
            fix="give a folder of unlabelled images",
        )
    pool = Pool(candidates, anchors=[s.image for s in references])
    meta = check_model_folder(source.path)
    seen = meta.trained_on
    if seen.get("images"):
        trained, chose = set(seen.get("images", ())), set(seen.get("val_images", ()))
        digest = {s.id: file_sha256(s.image) for s in pool.candidates}
        pool.exclude(MODEL_TRAINED, [i for i, h in digest.items() if h in trained])
        pool.exclude(MODEL_CHOSE, [i for i, h in digest.items() if h in chose and h not in trained])
        pool.candidates = [s for s in pool.candidates if digest[s.id] not in trained | chose]
        pool.notes.append(
            "the model folder records the files it trained on by SHA-256 only: exact copies of them are left out, "
            "near-duplicates cannot be checked (give the run folder for the full check)"
        )
    else:
        pool.notes.append(
            "the model folder does not record the images it trained on: the candidates could not be checked "
            "against them (give the run folder for that check)"
        )
    apply_hygiene(pool, references, set(), [Path(p) for p in inputs if Path(p).is_dir()])
    return pool
