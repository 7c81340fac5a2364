"""Samples for the split tests: classes of labelled images, tiles of slides, and duplicate sets."""

from __future__ import annotations

from pathlib import Path

from teachseg.data.records import Sample
from teachseg.data.split_record import Split


def class_samples(
    counts: dict[str | None, int], n_unlabelled: int = 0, name: str = "{cls}_{i:03d}.png"
) -> list[Sample]:
    """``n`` labelled samples per class (file names from ``name``), then ``n_unlabelled`` unlabelled ones."""
    out = []
    for cls, n in counts.items():
        for i in range(n):
            file = name.format(cls=cls, i=i, p=i // 4)
            out.append(
                Sample(
                    id=f"{cls}/{file}", image=Path(f"/d/{cls}/{file}"), masks=(Path(f"/m/{file}"),), cls=cls
                )
            )
    for i in range(n_unlabelled):
        out.append(Sample(id=f"u/{i:03d}.png", image=Path(f"/d/u/{i:03d}.png")))
    return out


def all_ids(split: Split) -> list[str]:
    """Every id a split places: train, val, test, selection and unlabelled."""
    return [*split.train, *split.val, *split.test, *split.select, *split.unlabelled]


def tile_samples(slides: dict[str, int], n_unlabelled: int = 3, stride: int = 128) -> list[Sample]:
    """Overlapping 256 px tiles (stride 128) of each slide, named as `teachseg tile` names them."""
    out = []
    for slide, n in slides.items():
        for i in range(n + n_unlabelled):
            stem = f"{slide}_x{i * stride}_y0"
            if i < n:
                out.append(
                    Sample(
                        id=f"images/{stem}.png",
                        image=Path(f"/t/images/{stem}.png"),
                        masks=(Path(f"/t/masks/{stem}.png"),),
                    )
                )
            else:
                out.append(Sample(id=f"unlabelled/{stem}.png", image=Path(f"/t/unlabelled/{stem}.png")))
    return out


def slide_of(sample_id: str) -> str:
    """The slide a tile id belongs to."""
    return sample_id.split("/")[1].split("_x")[0]


def samples_with_duplicates() -> tuple[list[Sample], list[list[str]]]:
    """Two classes plus unlabelled images, and the sets of ids with the same content among them."""
    samples = class_samples({"a": 12, "b": 8}, n_unlabelled=4)
    # an exact pair across classes, a near (resized) pair, and an unlabelled copy of a labelled image
    same = [["a/a_000.png", "b/b_000.png"], ["a/a_001.png", "a/a_002.png"], ["a/a_003.png", "u/000.png"]]
    return samples, same


def linked_samples(
    sizes: dict[str | None, int], links: list[tuple[int, int]], n_unlabelled: int = 0
) -> tuple[list[Sample], list[list[str]]]:
    """``class_samples(sizes, n_unlabelled)`` and duplicate links between them, given as index pairs into
    that list (pairs of one index, or beyond it, are ignored)."""
    samples = class_samples(sizes, n_unlabelled=n_unlabelled)
    n = len(samples)
    same = [[samples[a].id, samples[b].id] for a, b in links if a != b and a < n and b < n]
    return samples, same
