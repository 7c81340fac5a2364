"""The :class:`Split` record: which image ids train, validate, test, choose between methods or serve as
unlabelled data, saved as ``split.json`` beside each run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from teachseg.errors import DataError

SPLIT_FORMAT = 1


@dataclass
class Split:
    """Which image ids train, validate, test, choose between methods (``select``), or serve as unlabelled data.

    ``modality`` is the dataset's (``ultrasound`` or ``he``, :func:`teachseg.data.modality.dataset_modality`),
    decided from all its images, so the same for every seed; None in files written before it was recorded.
    """

    train: list[str]
    val: list[str]
    test: list[str]
    unlabelled: list[str]
    label_dropped: list[str]
    seed: int
    val_fraction: float
    test_fraction: float
    label_fraction: float
    group_regex: str | None
    classes: dict[str, str | None] = field(default_factory=dict)
    groups: int = 0
    grouped_by: list[str] = field(default_factory=list)
    duplicates: str = "off"
    duplicates_dropped: list[str] = field(default_factory=list)
    unlabelled_excluded: list[str] = field(default_factory=list)
    select: list[str] = field(default_factory=list)
    select_fraction: float = 0.0
    modality: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The split as a JSON-ready dict, with its format number and the count of excluded images."""
        return {
            "format": SPLIT_FORMAT,
            **asdict(self),
            "unlabelled_excluded_count": len(self.unlabelled_excluded),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Split:
        """A split from :meth:`to_json`'s dict; fields newer than the file take their defaults.

        Raises:
            ValueError, KeyError, TypeError: ``d`` is not a split.
        """
        if not isinstance(d, dict):
            raise ValueError("a split must be a JSON object")
        data = {k: v for k, v in d.items() if k != "format"}
        lists = ("train", "val", "test", "unlabelled", "label_dropped")
        for key in lists:
            if not isinstance(data.get(key), list) or not all(isinstance(i, str) for i in data[key]):
                raise ValueError(f"{key!r} must be a list of image ids")
        return cls(
            **{k: list(data[k]) for k in lists},
            seed=int(data["seed"]),
            val_fraction=float(data["val_fraction"]),
            test_fraction=float(data["test_fraction"]),
            label_fraction=float(data["label_fraction"]),
            group_regex=data.get("group_regex"),
            classes=dict(data.get("classes", {})),
            groups=int(data.get("groups", 0)),
            grouped_by=[str(x) for x in data.get("grouped_by", [])],
            duplicates=str(data.get("duplicates", "off")),
            duplicates_dropped=[str(x) for x in data.get("duplicates_dropped", [])],
            unlabelled_excluded=[str(x) for x in data.get("unlabelled_excluded", [])],
            select=[str(x) for x in data.get("select", [])],
            select_fraction=float(data.get("select_fraction", 0.0)),
            modality=str(data["modality"]) if data.get("modality") else None,
        )

    def save(self, path: Path) -> None:
        """Write the split as JSON, atomically."""
        from teachseg.io import write_json

        write_json(path, self.to_json())

    @classmethod
    def load(cls, path: Path) -> Split:
        """Read a split written by :meth:`save`.

        Raises:
            DataError: the file is missing or is not a split.
        """
        from teachseg.io import read_json

        path = Path(path)
        if not path.is_file():
            raise DataError(
                "split file not found",
                path=path,
                fix="check the path, or create a new split by training again",
            )
        try:
            return cls.from_json(read_json(path))
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(
                f"not a valid split file ({type(exc).__name__}: {exc})",
                path=path,
                fix="delete it so a new split is made, or restore it from the run folder",
            ) from None

    @property
    def labelled(self) -> list[str]:
        """Every id with a mask used for training or evaluation (train + val + test + select)."""
        return [*self.train, *self.val, *self.test, *self.select]
