"""From a config to records: discover the dataset, make (or reload) the split, check what training needs."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from teachseg.config import Config
from teachseg.data.datasets import Record
from teachseg.data.discover import discover
from teachseg.data.grouping import slides_from_manifests
from teachseg.data.modality import dataset_modality
from teachseg.data.records import Discovery
from teachseg.data.split_record import Split
from teachseg.data.splits import make_split
from teachseg.data.tile_scale import check_data_mpp, tiles_mpp
from teachseg.errors import ConfigError, DataError, OutputError
from teachseg.io import ensure_writable_dir, read_json, write_json, write_text


@dataclass
class PreparedData:
    """A run's dataset: what was discovered under ``root`` and the run's split, as records per split."""

    root: Path
    discovery: Discovery
    split: Split

    def _records(self, ids: list[str], with_masks: bool = True) -> list[Record]:
        by_id = self.discovery.by_id()
        out = []
        for i in ids:
            s = by_id.get(i)
            if s is None:
                raise DataError(
                    f"the split names '{i}', which is no longer in the dataset",
                    path=self.root,
                    fix="restore the file, or start a new run (without --resume) to make a new split",
                )
            out.append(Record(id=s.id, image=s.image, masks=s.masks if with_masks else (), cls=s.cls))
        return out

    @property
    def train(self) -> list[Record]:
        """Training images with their masks (label-dropped ones are among :attr:`unlabelled` instead)."""
        return self._records(self.split.train)

    @property
    def val(self) -> list[Record]:
        """Validation images with their masks (they choose the epoch and every replacement)."""
        return self._records(self.split.val)

    @property
    def test(self) -> list[Record]:
        """Test images with their masks (scored, never used to choose)."""
        return self._records(self.split.test)

    @property
    def select(self) -> list[Record]:
        """Selection images with their masks (``data.select_fraction``): scored at the end of every run,
        read by no decision inside one; they choose between methods."""
        return self._records(self.split.select)

    def modality(self, setting: str = "auto") -> str:
        """The modality of the strong augmentation: ``setting`` (``selftrain.online.modality``), or with
        ``auto`` the dataset's, from ``split.json`` (decided from all its images when an older file lacks it)."""
        if setting != "auto":
            return setting
        if self.split.modality is None:
            self.split.modality = dataset_modality(s.image for s in self.discovery.samples)
        return self.split.modality

    @property
    def unlabelled(self) -> list[Record]:
        """Images for pseudo-labels (masks withheld, also for label-dropped training images)."""
        return self._records(self.split.unlabelled, with_masks=False)


def prepare_run_dir(run_dir: Path, *, resume: bool, overwrite: bool) -> Path:
    """Create the run folder; refuse to clobber an earlier run unless ``overwrite``."""
    if run_dir.exists() and any(run_dir.iterdir()) and not resume:
        if not overwrite:
            raise OutputError(
                "a run folder with this name already exists",
                path=run_dir,
                fix="pass --resume to continue it, --overwrite to replace it, or choose another name (--set name=...)",
            )
        shutil.rmtree(run_dir)
    return ensure_writable_dir(run_dir)


def load_split(path: Path) -> Split:
    """Read a run's ``split.json`` (the dataset root it also records is dropped)."""
    d = read_json(path)
    d.pop("root", None)
    return Split.from_json(d)


def save_split(path: Path, split: Split, root: Path) -> None:
    """Write ``split.json`` with the absolute dataset root beside the split."""
    write_json(path, {**split.to_json(), "root": str(root.resolve())})


def prepare_data(
    cfg: Config, run_dir: Path, *, resume: bool = False, need_labels: bool = True
) -> PreparedData:
    """Discover ``cfg.data.root``, make the split (reused when resuming) and save it as ``split.json``."""
    d = cfg.data
    if d.root is None:
        raise ConfigError(
            "data.root is not set", fix="set data.root in the config or pass --set data.root=DIR"
        )
    discovery = discover(
        Path(d.root), d.layout, d.unlabelled_dirs, images_dir=d.images_dir, masks_dir=d.masks_dir
    )
    # the scale the network sees: the tiles' um/px times their side over image_size (teachseg.data.tile_scale)
    if d.mpp is None:
        d.mpp = tiles_mpp(Path(d.root), d.image_size)
    else:
        check_data_mpp(Path(d.root), d.image_size, d.mpp)
    split_path = run_dir / "split.json"
    if resume and split_path.is_file():
        try:
            split = load_split(split_path)
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(
                f"not a valid split file ({exc})", path=split_path, fix="delete it and start again"
            ) from None
    else:
        split = make_split(
            discovery.samples,
            seed=cfg.seed,
            val_fraction=d.val_fraction,
            test_fraction=d.test_fraction,
            label_fraction=d.label_fraction,
            group_regex=d.group_regex,
            slides=slides_from_manifests(discovery.samples),
            same_content=same_content(discovery) if d.duplicates != "off" else (),
            duplicates=d.duplicates,
            select_fraction=d.select_fraction,
        )
        modality = cfg.selftrain.online.modality
        split.modality = (
            dataset_modality(s.image for s in discovery.samples) if modality == "auto" else modality
        )
        save_split(split_path, split, Path(d.root))
    if need_labels and not split.train:
        raise DataError(
            "no image has a mask, but training needs labelled images",
            path=d.root,
            fix="add masks (images/ + masks/ with matching names, or BUSI's X_mask.png) and check with `teachseg data check`",
        )
    if need_labels and not split.val:
        raise ConfigError(
            "no labelled image is left for validation, which selects the best epoch",
            fix="set data.val_fraction > 0 (default 0.05) and provide at least 2 labelled images",
        )
    return PreparedData(Path(d.root), discovery, split)


def same_content(discovery: Discovery, cache_file: Path | None = None) -> list[list[str]]:
    """Sets of sample ids with the same pixels or the same picture: each exact-duplicate set and each
    near-duplicate pair (:meth:`~teachseg.data.duplicates.Duplicates.links`, what ``make_split`` groups by).

    Hashes are cached in the user's cache folder (:func:`teachseg.data.duplicates.default_cache_file`), so
    only new or changed images are decoded again. Unreadable images are skipped here; training reports them.
    """
    from teachseg.data.duplicates import default_cache_file, find_duplicates, hash_images

    found = hash_images(
        {s.id: s.image for s in discovery.samples},
        cache_file=cache_file or default_cache_file(discovery.root),
    )
    return find_duplicates(found.hashes).links()


def write_config(run_dir: Path, cfg: Config) -> None:
    """Write ``run_dir/config.yaml`` (the whole config, defaults included)."""
    write_text(run_dir / "config.yaml", cfg.to_yaml())
