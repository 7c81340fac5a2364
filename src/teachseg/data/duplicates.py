"""Find images with the same pixels (exact duplicates) or the same picture (near duplicates).

Every image is decoded once (:func:`teachseg.data.imageio.read_image`, the ``(H, W, 3) uint8`` array the
model sees) and reduced to two fingerprints:

* ``sha256`` of the decoded pixels and their shape: the same picture under two names, or saved once as
  8-bit greyscale and once as RGB PNG, has the same ``sha256``; a re-encoded JPEG does not;
* a perceptual hash, ``imagehash.phash`` (64-bit DCT hash of the 32x32 greyscale thumbnail). Two images
  are **near duplicates** when their hashes differ in at most :data:`NEAR_THRESHOLD` = 10 of the 64 bits.

Why 10: resizing a BUSI image to 70% and re-encoding it as JPEG (quality 80) moves its hash by 0 to 2 bits.
Among the 612 BUSI images of ``../shared/data/busi`` (186 966 pairs), 145 pairs are within 10 bits (the
exact pair among them), with few at 8-10 (3 at 8, 5 at 10) and a rise from 12 on (12 at 12, 30 at 14, 177
at 16, then thousands). The pairs looked at by eye up to 10 bits were one scan saved twice (with or without
calipers, a box or a label, or a few frames apart); at 12 bits the first pairs of different scans appear.
So 10 keeps every re-export with a wide margin and stays below the distinct pairs. Nearly constant images
(greyscale standard deviation under 1) are never near duplicates: their perceptual hash is noise.

Fingerprints are cached (one JSON file per dataset folder, keyed by absolute path, size and modification
time), so a second pass over a folder only decodes new or changed files. The cache lives in the user's
cache folder, not in the dataset (datasets are often shared or read-only): ``$TEACHSEG_CACHE_DIR`` if set,
else ``$XDG_CACHE_HOME/teachseg``, else ``~/.cache/teachseg``; file ``hashes/<hash of the folder path>.json``.
Deleting it is always safe.

Example:
    >>> found = hash_images({s.id: s.image for s in samples}, cache_file=default_cache_file(root))
    >>> dups = find_duplicates(found.hashes)
    >>> dups.exact, dups.near, dups.links(), dups.clusters()

What ``teachseg data check`` reports about them (contradictory labels) is in
:mod:`teachseg.data.duplicate_report`.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from teachseg.errors import DataError

log = logging.getLogger(__name__)

#: Largest Hamming distance (bits of 64) between two perceptual hashes of near duplicates.
NEAR_THRESHOLD = 10
#: Images whose greyscale standard deviation is below this are "flat": never near duplicates.
FLAT_STD = 1.0
_CACHE_FORMAT = 1
_HASH_NAME = "phash-8x8"  # change when the fingerprint changes, so old caches are ignored


@dataclass(frozen=True)
class ImageHash:
    """The fingerprints of one decoded image.

    Attributes:
        sha256: hex SHA-256 of the decoded ``(H, W, 3) uint8`` pixels and their shape.
        phash: 64-bit perceptual hash (``imagehash.phash``) as an integer.
        flat: the image is nearly constant; it takes no part in near-duplicate matching.
    """

    sha256: str
    phash: int
    flat: bool = False


@dataclass
class HashResult:
    """What :func:`hash_images` found: fingerprints by id, how many files it decoded, and unreadable files."""

    hashes: dict[str, ImageHash]
    decoded: int = 0
    unreadable: dict[str, str] = field(default_factory=dict)


@dataclass
class Duplicates:
    """Exact duplicate sets and near-duplicate pairs among a set of images (ids sorted in each entry).

    Attributes:
        exact: sets of two or more ids with the same decoded pixels.
        near: ``(id_a, id_b, distance)`` pairs whose perceptual hashes are within the threshold and whose
            pixels differ.
        threshold: the Hamming threshold used.
    """

    exact: list[list[str]] = field(default_factory=list)
    near: list[tuple[str, str, int]] = field(default_factory=list)
    threshold: int = NEAR_THRESHOLD

    def links(self, near: bool = True) -> list[list[str]]:
        """The duplicate relations themselves: each exact set and (with ``near``) each near pair.

        What a split groups by (:func:`teachseg.data.splits.make_split`): unlike :meth:`clusters`, they
        tell two labelled images that are duplicates of each other from two tied only through an
        unlabelled image near both, which must not merge their groups.
        """
        links = [list(ids) for ids in self.exact]
        if near:
            links.extend([a, b] for a, b, _ in self.near)
        return links

    def clusters(self, near: bool = True) -> list[list[str]]:
        """Connected sets of ids linked by an exact (and, with ``near``, a near) duplicate relation."""
        return connected(self.links(near))


# ---------------------------------------------------------------------------------------------- hashing


def hash_array(image: np.ndarray) -> ImageHash:
    """Fingerprints of a decoded image (``(H, W, 3) uint8``, as :func:`read_image` returns)."""
    import imagehash
    from PIL import Image

    array = np.ascontiguousarray(image)
    digest = hashlib.sha256(f"{array.shape}{array.dtype}".encode())
    digest.update(array.tobytes())
    pil = Image.fromarray(array)
    bits = imagehash.phash(pil, hash_size=8).hash.flatten()
    value = int("".join("1" if b else "0" for b in bits), 2)
    grey = np.asarray(pil.convert("L"), dtype=np.float32)
    return ImageHash(sha256=digest.hexdigest(), phash=value, flat=bool(grey.std() < FLAT_STD))


def _decode(path: Path) -> np.ndarray:
    """Decode an image for hashing (a module-level seam so tests can count decodes)."""
    from teachseg.data.imageio import read_image

    return read_image(path)


def hash_images(
    paths: Mapping[str, Path],
    *,
    cache_file: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> HashResult:
    """Fingerprint every image of ``paths`` (id -> file), reusing and updating ``cache_file``.

    Args:
        paths: image files by id.
        cache_file: JSON cache (see the module docstring); ``None`` decodes everything and caches nothing.
        progress: called as ``progress(done, total)`` after each file.

    Unreadable images are left out of ``hashes`` and listed in ``unreadable`` (id -> reason); they are
    reported by ``data check`` and by training on their own.
    """
    cache = _load_cache(cache_file) if cache_file is not None else {}
    changed = False
    result = HashResult(hashes={})
    total = len(paths)
    for done, (key, path) in enumerate(sorted(paths.items()), 1):
        path = Path(path)
        try:
            st = path.stat()
        except OSError as exc:
            result.unreadable[key] = f"{path}: cannot read ({exc.strerror or exc})"
            continue
        name = str(path.resolve())
        entry = cache.get(name)
        if entry is not None and entry[0] == st.st_size and entry[1] == st.st_mtime_ns:
            result.hashes[key] = ImageHash(sha256=entry[2], phash=int(entry[3], 16), flat=bool(entry[4]))
        else:
            try:
                h = hash_array(_decode(path))
            except DataError as exc:
                result.unreadable[key] = str(exc)
                continue
            result.decoded += 1
            result.hashes[key] = h
            cache[name] = [st.st_size, st.st_mtime_ns, h.sha256, f"{h.phash:016x}", int(h.flat)]
            changed = True
        if progress is not None:
            progress(done, total)
    if cache_file is not None and changed:
        _save_cache(cache_file, cache)
    return result


# ------------------------------------------------------------------------------------------- matching


def find_duplicates(hashes: Mapping[str, ImageHash], threshold: int = NEAR_THRESHOLD) -> Duplicates:
    """Exact duplicate sets (same ``sha256``) and near-duplicate pairs (phash distance <= ``threshold``)."""
    by_sha: dict[str, list[str]] = {}
    for key in sorted(hashes):
        by_sha.setdefault(hashes[key].sha256, []).append(key)
    exact = sorted(ids for ids in by_sha.values() if len(ids) > 1)

    # One representative per distinct pixel content; flat images are left out.
    reps = sorted(ids[0] for ids in by_sha.values() if not hashes[ids[0]].flat)
    near: list[tuple[str, str, int]] = []
    if threshold >= 0 and len(reps) > 1:
        values = np.array([hashes[r].phash for r in reps], dtype=np.uint64)
        for i, j, d in _close_pairs(values, threshold):
            a, b = sorted((reps[i], reps[j]))
            near.append((a, b, d))
    return Duplicates(exact=exact, near=sorted(near), threshold=threshold)


def _close_pairs(values: np.ndarray, threshold: int, block: int = 1024) -> Iterable[tuple[int, int, int]]:
    """Index pairs ``i < j`` of 64-bit values within ``threshold`` bits, blockwise (N^2 / 2 XORs, vectorised)."""
    n = len(values)
    for start in range(0, n - 1, block):
        rows = values[start : start + block]
        dist = _popcount(rows[:, None] ^ values[None, :])
        ii, jj = np.nonzero(dist <= threshold)
        for i, j in zip(ii.tolist(), jj.tolist(), strict=True):
            gi = start + i
            if j > gi:
                yield gi, j, int(dist[i, j])


def _popcount(x: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(x).astype(np.int64)
    as_bytes = x.view(np.uint8).reshape(*x.shape, 8)
    return np.unpackbits(as_bytes, axis=-1).sum(axis=-1).astype(np.int64)


def connected(links: Iterable[Sequence[str]]) -> list[list[str]]:
    """Connected components (sorted lists, sorted) of the ids linked by each sequence in ``links``."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for link in links:
        ids = list(link)
        for other in ids[1:]:
            ra, rb = find(ids[0]), find(other)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
        if ids:
            find(ids[0])
    groups: dict[str, list[str]] = {}
    for x in parent:
        groups.setdefault(find(x), []).append(x)
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)


# ---------------------------------------------------------------------------------------------- cache


def cache_dir() -> Path:
    """The user's teachseg cache folder (see the module docstring); read at call time, not at import."""
    if os.environ.get("TEACHSEG_CACHE_DIR"):
        return Path(os.environ["TEACHSEG_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "teachseg"


def default_cache_file(root: Path) -> Path:
    """The hash cache of the dataset folder ``root``."""
    key = hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:16]
    return cache_dir() / "hashes" / f"{key}.json"


def _load_cache(path: Path) -> dict[str, list[Any]]:
    from teachseg.io import read_json

    try:
        data = read_json(path)
    except (OSError, ValueError):
        return {}  # no cache yet, or a damaged one: rebuild it
    if not isinstance(data, dict) or data.get("format") != _CACHE_FORMAT or data.get("hash") != _HASH_NAME:
        return {}
    entries = data.get("entries")
    if not isinstance(entries, dict):
        return {}
    return {k: v for k, v in entries.items() if isinstance(v, list) and len(v) == 5}


def _save_cache(path: Path, entries: dict[str, list[Any]]) -> None:
    from teachseg.io import write_json

    kept = {k: v for k, v in sorted(entries.items()) if os.path.exists(k)}
    try:
        write_json(path, {"format": _CACHE_FORMAT, "hash": _HASH_NAME, "entries": kept})
    except OSError as exc:  # a read-only home must not stop training; the next pass decodes again
        log.warning("could not write the image hash cache %s (%s)", path, exc)
