"""The groups a split keeps together: a patient or slide (``group_regex``, tile manifests) and images with
the same content; see :mod:`teachseg.data.splits` for the rules."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Collection, Mapping, Sequence
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


def build_groups(
    samples: Sequence[Sample],
    pattern: re.Pattern[str] | None,
    slides: Mapping[str, str],
    same_content: Sequence[Sequence[str]] = (),
    *,
    dropped: Collection[str] = (),
) -> dict[str, str]:
    """Sample id -> group key: ``group_regex`` match, else source slide, else the id; then every set of
    ``same_content`` ids merges the groups of its members (the merged group keeps the smallest key)."""
    keys: dict[str, str] = {}
    for s in samples:
        key = group_key(s, pattern)
        if key.startswith("id:") and s.id in slides:
            key = "slide:" + slides[s.id]
        keys[s.id] = key
    links = [[keys[i] for i in ids if i in keys and i not in dropped] for ids in same_content]
    # a merged group is named after its patient or slide when it has one
    rank = {"group:": 0, "slide:": 1}
    merged = {
        k: min(comp, key=lambda x: (rank.get(x[: x.index(":") + 1], 2), x))
        for comp in connected(links)
        for k in comp
    }
    return {i: merged.get(k, k) for i, k in keys.items()}


def groups_of(labelled: Sequence[Sample], keys: Mapping[str, str]) -> list[Group]:
    """The groups of ``labelled`` under ``keys`` (sample id -> group key), sorted by key."""
    by_key: dict[str, list[Sample]] = defaultdict(list)
    for s in labelled:
        by_key[keys[s.id]].append(s)
    return [Group(k, v) for k, v in sorted(by_key.items())]


def duplicates_to_drop(samples: Sequence[Sample], same_content: Sequence[Sequence[str]]) -> set[str]:
    """All but one id of each set: the first labelled one by id is kept, else the first."""
    labelled = {s.id for s in samples if s.labelled}
    present = {s.id for s in samples}
    drop: set[str] = set()
    for ids in same_content:
        members = sorted(i for i in ids if i in present)
        if len(members) < 2:
            continue
        keep = next((i for i in members if i in labelled), members[0])
        drop.update(i for i in members if i != keep)
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
