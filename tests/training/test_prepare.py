"""prepare_data: tiles grouped by slide, duplicates grouped, the unlabelled pool bound by groups (issue 8)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from teachseg.config import build_config
from teachseg.io import read_json, write_json
from teachseg.training.prepare import prepare_data


def _slide(sample_id: str) -> str:
    return Path(sample_id).name.split("_x")[0]


@pytest.fixture
def tiles(synth_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """The synthetic tiles re-laid out as `teachseg tile` output of two slides (8 labelled + 2 unlabelled
    overlapping tiles each, with manifests), and an extra unlabelled folder holding, for each slide, an exact
    copy of one labelled tile and a resized JPEG of another."""
    monkeypatch.setenv("TEACHSEG_CACHE_DIR", str(tmp_path / "cache"))
    root, extra = tmp_path / "tiles", tmp_path / "extra"
    labelled = sorted((synth_data / "masks").glob("*.png"))
    unlabelled = sorted((synth_data / "unlabelled").glob("*.png"))
    for k, slide in enumerate(("slideA", "slideB")):
        records = []
        for i, mask in enumerate(labelled[8 * k : 8 * k + 8]):
            name = f"{slide}_x{32 * i}_y0"
            (root / "images").mkdir(parents=True, exist_ok=True)
            (root / "masks").mkdir(parents=True, exist_ok=True)
            shutil.copy(synth_data / "images" / mask.name, root / "images" / f"{name}.png")
            shutil.copy(mask, root / "masks" / f"{name}.png")
            records.append({"name": name, "x": 32 * i, "y": 0, "labelled": True})
            if i == 0:  # exact copy under another name
                extra.mkdir(exist_ok=True)
                shutil.copy(synth_data / "images" / mask.name, extra / f"copy_{slide}.png")
            if i == 1:  # re-exported: resized and re-encoded
                image = Image.open(synth_data / "images" / mask.name).convert("RGB")
                image.resize((48, 48), Image.BILINEAR).save(extra / f"small_{slide}.jpg", quality=85)
        for j, path in enumerate(unlabelled[2 * k : 2 * k + 2]):
            name = f"{slide}_x{32 * (8 + j)}_y0"
            (root / "unlabelled").mkdir(exist_ok=True)
            shutil.copy(path, root / "unlabelled" / f"{name}.png")
            records.append({"name": name, "x": 32 * (8 + j), "y": 0, "labelled": False})
        write_json(
            root / f"{slide}_tiles.json", {"slide": f"/slides/{slide}.svs", "mpp": 0.5, "tiles": records}
        )
    return root, extra


def _config(root: Path, extra: Path, seed: int, duplicates: str = "group") -> object:
    return build_config(
        {
            "seed": seed,
            "data": {
                "root": str(root),
                "unlabelled_dirs": [str(extra)],
                "val_fraction": 0.25,
                "duplicates": duplicates,
            },
        }
    )


def test_slides_grouped_and_their_unlabelled_tiles_and_copies_left_out(
    tiles: tuple[Path, Path], tmp_path: Path
) -> None:
    root, extra = tiles
    for seed in (0, 1, 2):
        run = tmp_path / f"run{seed}"
        run.mkdir()
        data = prepare_data(_config(root, extra, seed), run)  # type: ignore[arg-type]
        split = data.split
        val_slides = {_slide(i) for i in split.val}
        train_slides = {_slide(i) for i in split.train}
        assert len(val_slides) == 1 and not val_slides & train_slides  # no slide straddles
        (held_out,) = val_slides
        saved = read_json(run / "split.json")
        assert saved["groups"] == 2 and "tile manifests" in saved["grouped_by"]
        # the validation slide's 2 unlabelled tiles and the 2 copies of its images are never pseudo-labelled
        excluded = set(saved["unlabelled_excluded"])
        assert saved["unlabelled_excluded_count"] == 4 == len(excluded)
        assert excluded == {
            f"unlabelled/{held_out}_x256_y0.png",
            f"unlabelled/{held_out}_x288_y0.png",
            f"extra/copy_{held_out}.png",
            f"extra/small_{held_out}.jpg",
        }
        assert not excluded & {r.id for r in data.unlabelled}
        assert len(data.unlabelled) == 4  # the training slide's own tiles and copies stay


def test_an_unlabelled_image_near_both_slides_does_not_merge_them(
    tiles: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The split gets the duplicate pairs, not their closure: an unlabelled image near a tile of each slide
    (tiles that are not near each other) leaves the two slides two groups, and is never pseudo-labelled."""
    from teachseg.data import duplicates

    root, extra = tiles
    bridge = "extra/copy_slideA.png"
    pairs = [("extra/small_slideA.jpg", "images/slideA_x32_y0.png", 2)]
    pairs += [(bridge, "images/slideA_x0_y0.png", 4), (bridge, "images/slideB_x0_y0.png", 9)]
    monkeypatch.setattr(duplicates, "find_duplicates", lambda hashes: duplicates.Duplicates(near=pairs))
    for seed in (0, 1):
        split = prepare_data(_config(root, extra, seed), tmp_path / f"run{seed}").split  # type: ignore[arg-type]
        assert split.groups == 2 and len({_slide(i) for i in split.val}) == 1
        assert bridge in split.unlabelled_excluded and bridge not in split.unlabelled


def test_duplicates_off_groups_by_slide_only(tiles: tuple[Path, Path], tmp_path: Path) -> None:
    root, extra = tiles
    split = prepare_data(_config(root, extra, 0, duplicates="off"), tmp_path / "run").split  # type: ignore[arg-type]
    assert split.duplicates == "off" and split.grouped_by == ["tile manifests"]
    assert len(split.unlabelled_excluded) == 2  # the copies are not recognised, the slide's tiles are
    assert all(i.startswith("unlabelled/") for i in split.unlabelled_excluded)


def test_second_prepare_reads_hashes_from_the_cache(
    tiles: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from teachseg.data import duplicates

    root, extra = tiles
    prepare_data(_config(root, extra, 0), tmp_path / "a")  # type: ignore[arg-type]
    calls: list[Path] = []
    monkeypatch.setattr(duplicates, "_decode", lambda p: calls.append(p) or np.zeros((4, 4, 3), np.uint8))
    again = prepare_data(_config(root, extra, 0), tmp_path / "b")  # type: ignore[arg-type]
    assert calls == [] and len(again.split.unlabelled_excluded) == 4


def test_images_dir_and_masks_dir_reach_training(synth_data: Path, tmp_path: Path) -> None:
    """A dataset laid out as imgs/*.tif + labels/*.png (0/1) trains through the config's explicit folders."""
    root = tmp_path / "ds"
    (root / "imgs").mkdir(parents=True)
    (root / "labels").mkdir()
    for mask in sorted((synth_data / "masks").glob("*.png"))[:8]:
        Image.open(synth_data / "images" / mask.name).save(root / "imgs" / f"{mask.stem}.tif")
        binary = (np.asarray(Image.open(mask).convert("L")) > 127).astype(np.uint8)
        Image.fromarray(binary).save(root / "labels" / f"{mask.stem}.png")
    cfg = build_config(
        {
            "seed": 0,
            "data": {"root": str(root), "images_dir": "imgs", "masks_dir": "labels", "val_fraction": 0.25},
        },
        "explicit",
    )
    data = prepare_data(cfg, tmp_path / "run")
    records = [*data.train, *data.val]
    assert len({r.id for r in records}) == 8 and not data.split.unlabelled
    assert all(r.image.suffix == ".tif" for r in records)
    assert all(len(r.masks) == 1 and r.masks[0].parent.name == "labels" for r in records)


@pytest.mark.parametrize(("image_size", "seen"), [(64, 0.5), (32, 1.0), (128, 0.25)])
def test_the_model_mpp_is_the_scale_the_network_sees(
    tiles: tuple[Path, Path], tmp_path: Path, image_size: int, seen: float
) -> None:
    """64 px tiles at 0.5 um/px: trained at 32 px they are seen at 1.0 um/px, which the model records."""
    from teachseg.errors import ConfigError

    root, extra = tiles
    cfg = _config(root, extra, 0)
    cfg.data.image_size = image_size  # type: ignore[attr-defined]
    prepare_data(cfg, tmp_path / "run")  # type: ignore[arg-type]
    assert cfg.data.mpp == pytest.approx(seen)  # type: ignore[attr-defined]
    prepare_data(cfg, tmp_path / "again")  # type: ignore[arg-type]
    assert cfg.data.mpp == pytest.approx(seen)  # type: ignore[attr-defined]  # a second pass keeps it
    if seen != 0.5:  # the tiles' own um/px set by hand is the scale the network does not see
        cfg.data.mpp = 0.5  # type: ignore[attr-defined]
        with pytest.raises(ConfigError, match=f"set it to {seen:g}"):
            prepare_data(cfg, tmp_path / "by_hand")  # type: ignore[arg-type]
