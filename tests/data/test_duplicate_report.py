"""The duplicates section of ``data check``: duplicate sets, mask agreement and contradictory labels."""

from __future__ import annotations

from pathlib import Path

from teachseg.data.discover import discover
from teachseg.data.duplicate_report import duplicates_summary
from tests.data.dataset_files import write_mask, write_photo


def test_identical_images_in_two_classes_are_a_risk_and_one_group(tmp_path: Path) -> None:
    write_photo(tmp_path / "benign/a.png", seed=1)
    write_mask(tmp_path / "benign/a_mask.png", (slice(0, 4), slice(0, 4)))
    write_photo(tmp_path / "malignant/b.png", seed=1)  # the same pixels as benign/a.png
    write_mask(tmp_path / "malignant/b_mask.png", (slice(0, 4), slice(0, 4)))
    write_photo(tmp_path / "malignant/c.png", seed=2)
    write_mask(tmp_path / "malignant/c_mask.png", (slice(5, 9), slice(5, 9)))

    report = duplicates_summary(discover(tmp_path), cache_file=tmp_path / "cache.json")
    assert [e["ids"] for e in report["exact"]] == [["benign/a.png", "malignant/b.png"]]
    (entry,) = report["exact"]
    assert entry["classes"] == ["benign", "malignant"]
    assert entry["masks_agree"] is True and entry["mask_dice"] == 1.0
    assert report["groups"] == 2 and report["grouped_by"] == ["duplicates"]
    assert len(report["risks"]) == 1 and "contradictory" in report["risks"][0]
    assert (report["hashed"], report["decoded"]) == (3, 3)
    again = duplicates_summary(discover(tmp_path), cache_file=tmp_path / "cache.json")
    assert again["decoded"] == 0  # fingerprints came from the cache
