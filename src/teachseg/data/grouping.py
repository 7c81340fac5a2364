"""The groups a split keeps together: a patient or slide (``group_regex``, tile manifests) and images with
the same content; see :mod:`teachseg.data.splits` for the rules."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from teachseg.data.duplicates import connected
from teachseg.data.records import Sample

TILE_MANIFEST_SUFFIX = "_tiles.json"
TILE_FOLDERS = ("images", "masks", "unlabelled")


@dataclass
class Group:
    """The labelled samples of one group key; a split moves them as one."""

    key: str
    samples: list[Sample]

    @property
    def cls(self) -> str | None:
        """Majority class of the group (ties: the first by name)."""
        counts = Counter(s.cls for s in self.samples)
        return min(counts, key=lambda c: (-counts[c], "" if c is None else c))

    def __len__(self) -> int:
        return len(self.samples)


def group_key(sample: Sample, pattern: re.Pattern[str] | None) -> str:
    """The group a sample belongs to: the regex's first group (or whole match) on the file name, else its id."""
    if pattern is not None:
        m = pattern.search(sample.image.name)
        if m:
            value = m.group(1) if pattern.groups and m.group(1) is not None else m.group(0)
            return "group:" + value
    return "id:" + sample.id


@dataclass(frozen=True)
class Grouping:
    """The groups of a dataset (see :func:`build_groups`).

    Attributes:
        keys: sample id -> group key. Labelled images are grouped among themselves; an unlabelled image
            has the key of the one labelled group it is tied to, else a key of its own (or of the
            unlabelled images tied to it).
        reaches: unlabelled sample id -> keys of every labelled group it is tied to (none, one, or several
            when it is a duplicate of images of several groups, or on a slide of one and a duplicate of
            another's image); it may be pseudo-labelled only while none of them is held out.
    """

    keys: dict[str, str]
    reaches: dict[str, frozenset[str]]


def build_groups(
    samples: Sequence[Sample],
    pattern: re.Pattern[str] | None,
    slides: Mapping[str, str],
    same_content: Sequence[Sequence[str]] = (),
    *,
    dropped: Collection[str] = (),
) -> Grouping:
    """Group ``samples``: ``group_regex`` match, else source slide, else the id; then every set of
    ``same_content`` ids merges the groups of its *labelled* members (transitively; a merged group is
    named after its patient or slide when it has one, else after its smallest key).

    Unlabelled images never merge two groups of labelled images, so adding them cannot move a labelled
    image: an unlabelled image joins the labelled group that its patient or slide, or its duplicates
    (directly or through other unlabelled images), tie it to when there is one, and is listed in
    :attr:`Grouping.reaches` against every labelled group it is tied to.
    """
    base: dict[str, str] = {}
    for s in samples:
        key = group_key(s, pattern)
        if key.startswith("id:") and s.id in slides:
            key = "slide:" + slides[s.id]
        base[s.id] = key
    labelled = {s.id for s in samples if s.labelled}
    links = [[i for i in ids if i in base and i not in dropped] for ids in same_content]
    merged = _merge([base[i] for i in ids if i in labelled] for ids in links)
    labelled_keys = {base[i] for i in labelled}

    def labelled_group(key: str) -> str:
        return merged.get(key, key)

    # everything tied together, unlabelled images included: only for the unlabelled images' keys
    tied = _merge([base[i] for i in ids] for ids in links)
    groups_in: dict[str, set[str]] = defaultdict(set)
    for key in labelled_keys:
        groups_in[tied.get(key, key)].add(labelled_group(key))

    keys: dict[str, str] = {}
    reaches: dict[str, frozenset[str]] = {}
    for s in samples:
        key = base[s.id]
        if key in labelled_keys:  # a labelled image, or an unlabelled one of a labelled image's patient/slide
            keys[s.id] = labelled_group(key)
        if not s.labelled:
            reach = groups_in.get(tied.get(key, key), set())
            reaches[s.id] = frozenset(reach)
            if key not in labelled_keys and len(reach) == 1:
                (keys[s.id],) = reach
            elif key not in labelled_keys:  # tied to no labelled group, or to several: joins none
                keys[s.id] = key if reach else tied.get(key, key)
    return Grouping(keys, reaches)


def _merge(links: Iterable[Sequence[str]]) -> dict[str, str]:
    """Group key -> the name of its connected set of keys, for the keys that ``links`` ties to others: a
    patient's key first, then a slide's, then the smallest."""
    rank = {"group:": 0, "slide:": 1}
    return {
        k: min(comp, key=lambda x: (rank.get(x[: x.index(":") + 1], 2), x))
        for comp in connected(links)
        for k in comp
    }


def groups_of(labelled: Sequence[Sample], keys: Mapping[str, str]) -> list[Group]:
    """The groups of ``labelled`` under ``keys`` (sample id -> group key), sorted by key."""
    by_key: dict[str, list[Sample]] = defaultdict(list)
    for s in labelled:
        by_key[keys[s.id]].append(s)
    return [Group(k, v) for k, v in sorted(by_key.items())]


def duplicates_to_drop(samples: Sequence[Sample], same_content: Sequence[Sequence[str]]) -> set[str]:
    """The ids ``data.duplicates: drop`` leaves out: all but the first (by id) of each set of labelled
    images tied by ``same_content`` (transitively, through labelled images only), every unlabelled image
    tied to a labelled one, and all but the first of each set of unlabelled images tied only to each other.
    So an unlabelled image never decides which labelled image is kept."""
    labelled = {s.id for s in samples if s.labelled}
    present = {s.id for s in samples}
    links = [[i for i in ids if i in present] for ids in same_content]
    drop: set[str] = set()
    for comp in connected([i for i in ids if i in labelled] for ids in links):
        drop.update(comp[1:])
    for comp in connected(links):
        if any(i in labelled for i in comp):
            drop.update(i for i in comp if i not in labelled)
        else:
            drop.update(comp[1:])
    return drop


def slides_from_manifests(samples: Sequence[Sample]) -> dict[str, str]:
    """Sample id -> source slide, for the tiles listed in ``teachseg tile`` manifests.

    ``teachseg tile`` writes ``OUT/images/NAME.png`` (+ ``OUT/masks/``) or ``OUT/unlabelled/NAME.png`` and a
    manifest ``OUT/SLIDE_tiles.json`` whose ``tiles`` list each ``name``. A sample whose image lies in such
    an ``OUT`` (or directly beside a manifest) and is listed there belongs to ``SLIDE``. Unreadable
    manifests are ignored (no grouping is better than a crash; ``data check`` reads them again).
    """
    from teachseg.io import read_json

    tiles_of: dict[Path, dict[str, str]] = {}

    def manifests(folder: Path) -> dict[str, str]:
        if folder not in tiles_of:
            found: dict[str, str] = {}
            for manifest in sorted(folder.glob("*" + TILE_MANIFEST_SUFFIX)):
                slide = manifest.name[: -len(TILE_MANIFEST_SUFFIX)]
                try:
                    records = read_json(manifest).get("tiles", [])
                    names = [str(r["name"]) for r in records]
                except (OSError, ValueError, AttributeError, KeyError, TypeError):
                    continue
                found.update(dict.fromkeys(names, slide))
            tiles_of[folder] = found
        return tiles_of[folder]

    out: dict[str, str] = {}
    for s in samples:
        folder = s.image.parent
        stem = s.image.stem
        candidates = [folder.parent] if folder.name in TILE_FOLDERS else []
        candidates.append(folder)
        for c in candidates:
            slide = manifests(c.resolve()).get(stem)
            if slide is not None:
                out[s.id] = slide
                break
    return out
