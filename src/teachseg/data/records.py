"""The records of a discovered dataset: a :class:`Sample` per image, the :class:`Discovery` of a folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    """One image and the mask files that label it.

    Attributes:
        id: image path relative to the dataset root, POSIX style; unique within a discovery.
        image: the image file.
        masks: mask files, OR-merged when there are several; empty for an unlabelled image.
        cls: class (the BUSI class folder), else ``None``.
    """

    id: str
    image: Path
    masks: tuple[Path, ...] = ()
    cls: str | None = None

    @property
    def labelled(self) -> bool:
        """The samples that have a mask."""
        return bool(self.masks)


@dataclass
class Discovery:
    """The result of :func:`discover`: the samples of a dataset and the problems met on the way.

    Attributes:
        reason: why this layout was chosen, in words.
        images_dir, masks_dir: the paired folders of the ``pairs`` layout, else ``None``.
        mask_like: files that look like masks (by name, folder or content) but label no image; they are
            never samples. A non-empty list is a risk: the masks are likely in a folder nobody paired.
        masks_skipped: mask files kept out of ``unlabelled_dirs`` (they are masks, not images).
    """

    root: Path
    layout: str
    samples: list[Sample]
    problems: list[str] = field(default_factory=list)
    reason: str = ""
    images_dir: Path | None = None
    masks_dir: Path | None = None
    mask_like: list[Path] = field(default_factory=list)
    masks_skipped: int = 0

    @property
    def labelled(self) -> list[Sample]:
        """The samples that have a mask."""
        return [s for s in self.samples if s.labelled]

    @property
    def unlabelled(self) -> list[Sample]:
        """The samples without a mask."""
        return [s for s in self.samples if not s.labelled]

    def by_id(self) -> dict[str, Sample]:
        """The samples by id."""
        return {s.id: s for s in self.samples}
