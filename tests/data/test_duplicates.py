"""Duplicate images: exact (same decoded pixels) and near (perceptual hash), the hash cache, real BUSI."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from teachseg.data import duplicates as dup
from teachseg.data.duplicates import (
    NEAR_THRESHOLD,
    connected,
    default_cache_file,
    find_duplicates,
    hash_array,
    hash_images,
)


def scan(seed: int, size: int = 96) -> np.ndarray:
    """A smooth random grey "scan" with a few blobs: distinct seeds give distinct perceptual hashes."""
    rng = np.random.default_rng(seed)
    low = rng.random((6, 6)).astype(np.float32)
    big = np.asarray(Image.fromarray((low * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC))
    noise = rng.integers(0, 12, (size, size))
    grey = np.clip(big.astype(int) + noise, 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def resized_jpeg(image: np.ndarray, scale: float = 0.7) -> np.ndarray:
    """``image`` re-exported: resized and re-encoded as JPEG (quality 80)."""
    h, w = image.shape[:2]
    small = Image.fromarray(image).resize((int(w * scale), int(h * scale)), Image.BILINEAR)
    buf = io.BytesIO()
    small.save(buf, format="JPEG", quality=80)
    return np.asarray(Image.open(buf).convert("RGB"))


def write(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path


@pytest.fixture
def folder(tmp_path: Path) -> dict[str, Path]:
    """6 distinct scans, an exact copy of scan 0 (greyscale PNG, same pixels), a resized JPEG of scan 1."""
    root = tmp_path / "imgs"
    paths = {f"s{i}.png": write(root / f"s{i}.png", scan(i)) for i in range(6)}
    grey = scan(0)[..., 0]
    paths["copy_of_s0.png"] = write(root / "copy_of_s0.png", grey)  # L-mode file, same RGB pixels
    paths["s1_small.jpg"] = write(root / "s1_small.jpg", resized_jpeg(scan(1)))
    return paths


def test_exact_and_near_duplicates_found_and_distinct_images_kept_apart(folder: dict[str, Path]) -> None:
    found = hash_images(folder)
    assert found.decoded == len(folder) and not found.unreadable
    d = find_duplicates(found.hashes)
    assert d.exact == [["copy_of_s0.png", "s0.png"]]
    assert [(a, b) for a, b, _ in d.near] == [("s1.png", "s1_small.jpg")]
    assert d.near[0][2] <= NEAR_THRESHOLD
    assert d.clusters() == [["copy_of_s0.png", "s0.png"], ["s1.png", "s1_small.jpg"]]
    assert d.clusters(near=False) == [["copy_of_s0.png", "s0.png"]]
    # the threshold matters: at 0 bits only identical hashes are near duplicates
    strict = find_duplicates(found.hashes, threshold=-1)
    assert strict.near == [] and strict.exact == d.exact


def test_links_keep_each_relation_and_clusters_close_them() -> None:
    # "u" is near "a" and near "c", which are not near each other
    d = dup.Duplicates(exact=[["a", "b"]], near=[("a", "u", 3), ("c", "u", 4)])
    assert d.links() == [["a", "b"], ["a", "u"], ["c", "u"]]
    assert d.links(near=False) == [["a", "b"]]
    assert d.clusters() == [["a", "b", "c", "u"]]


def test_flat_images_are_never_near_duplicates() -> None:
    black = hash_array(np.zeros((32, 32, 3), np.uint8))
    grey = hash_array(np.full((40, 40, 3), 128, np.uint8))
    assert black.flat and grey.flat
    assert bin(black.phash ^ grey.phash).count("1") <= NEAR_THRESHOLD  # would match if they were not flat
    assert find_duplicates({"a": black, "b": grey}).near == []
    # but two identical flat images are still exact duplicates
    assert find_duplicates({"a": black, "b": hash_array(np.zeros((32, 32, 3), np.uint8))}).exact == [
        ["a", "b"]
    ]


def test_unreadable_images_are_listed_not_raised(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    found = hash_images({"bad": bad, "missing": tmp_path / "missing.png"})
    assert set(found.unreadable) == {"bad", "missing"} and not found.hashes


def test_cache_makes_the_second_pass_decode_nothing(
    folder: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[Path] = []
    real = dup._decode

    def counting(path: Path) -> np.ndarray:
        decoded.append(path)
        return real(path)

    monkeypatch.setattr(dup, "_decode", counting)
    cache = tmp_path / "cache" / "hashes.json"
    first = hash_images(folder, cache_file=cache)
    assert len(decoded) == first.decoded == len(folder) and cache.is_file()

    decoded.clear()
    second = hash_images(folder, cache_file=cache)
    assert decoded == [] and second.decoded == 0
    assert second.hashes == first.hashes

    # a changed file (new size or modification time) is decoded again, and only that one
    changed = folder["s3.png"]
    write(changed, scan(99))
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 5_000_000_000))
    third = hash_images(folder, cache_file=cache)
    assert decoded == [changed] and third.decoded == 1
    assert third.hashes["s3.png"] != first.hashes["s3.png"]

    # a damaged cache is rebuilt, not trusted
    cache.write_text("{ not json", encoding="utf-8")
    decoded.clear()
    assert hash_images(folder, cache_file=cache).hashes == third.hashes
    assert len(decoded) == len(folder)


def test_default_cache_file_is_in_the_user_cache_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEACHSEG_CACHE_DIR", str(tmp_path / "c"))
    a, b = default_cache_file(tmp_path / "data1"), default_cache_file(tmp_path / "data2")
    assert a.parent == tmp_path / "c" / "hashes" and a != b
    monkeypatch.delenv("TEACHSEG_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_file(tmp_path / "data1").is_relative_to(tmp_path / "xdg" / "teachseg")


def test_connected_components() -> None:
    assert connected([("a", "b"), ("c", "d"), ("b", "c"), ("x",), ("y", "y")]) == [["a", "b", "c", "d"]]
    assert connected([["p", "q", "r"], ("s", "t")]) == [["p", "q", "r"], ["s", "t"]]


def test_busi_exact_duplicate_pair_in_two_classes(
    shared_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from teachseg.data.discover import discover

    busi = shared_dir / "data" / "busi"
    if not busi.is_dir():
        pytest.skip(f"BUSI not found at {busi}")
    monkeypatch.setenv("TEACHSEG_CACHE_DIR", str(tmp_path / "cache"))
    d = discover(busi)
    found = hash_images({s.id: s.image for s in d.samples}, cache_file=default_cache_file(busi))
    dups = find_duplicates(found.hashes)
    assert len(dups.exact) == 1
    (pair,) = dups.exact
    classes = {d.by_id()[i].cls for i in pair}
    assert classes == {"benign", "malignant"}
    # near duplicates exist in BUSI (re-saved frames); each is within the documented threshold
    assert dups.near and all(dist <= NEAR_THRESHOLD for _, _, dist in dups.near)
