"""`teachseg data check` and `teachseg data synth`: output and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from teachseg.cli import run


def _pair(root: Path, name: str, mask_shape: tuple[int, int] = (10, 12)) -> None:
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((10, 12, 3), 90, np.uint8)).save(root / "images" / f"{name}.png")
    mask = np.zeros(mask_shape, np.uint8)
    mask[:5] = 255
    Image.fromarray(mask).save(root / "masks" / f"{name}_mask.png")


def test_check_clean_dataset_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _pair(tmp_path, "a")
    _pair(tmp_path, "b")
    assert run(["data", "check", str(tmp_path), "--json", str(tmp_path / "report.json")]) == 0
    text = capsys.readouterr().out
    assert "pairs" in text and "2" in text and "mask coverage" in text and "50.0%" in text
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["pairs"] == 2 and report["problems"] == []


def test_check_with_problems_exits_1_and_names_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _pair(tmp_path, "a")
    _pair(tmp_path, "bad", mask_shape=(7, 7))
    (tmp_path / "images" / "trunc.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    assert run(["data", "check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "bad_mask.png" in out and "trunc.png" in out and "does not match" in out


def test_check_missing_folder_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no such folder"
    assert run(["data", "check", str(missing)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "not found" in err and "Traceback" not in err


def test_check_mat_variable_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import scipy.io

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(tmp_path / "images/a.png")
    scipy.io.savemat(tmp_path / "masks/a.mat", {"vec": np.arange(4.0)})
    assert run(["data", "check", str(tmp_path)]) == 1
    assert "a.mat" in capsys.readouterr().out
    scipy.io.savemat(tmp_path / "masks/a.mat", {"gt": np.ones((6, 8)), "big": np.zeros((50, 50))})
    assert run(["data", "check", str(tmp_path), "--mat-variable", "gt"]) == 0
    assert "100.0%" in capsys.readouterr().out


def test_synth_then_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "demo"
    args = [
        "data",
        "synth",
        str(out_dir),
        "--labelled",
        "3",
        "--unlabelled",
        "2",
        "--size",
        "32",
        "--seed",
        "1",
    ]
    assert run(args) == 0
    assert "3 labelled" in capsys.readouterr().out
    assert len(list((out_dir / "images").glob("*.png"))) == 3
    assert len(list((out_dir / "unlabelled").glob("*.png"))) == 2
    assert run(["data", "check", str(out_dir)]) == 0
    assert "pairs" in capsys.readouterr().out


def test_synth_refuses_unrelated_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "keep.txt").write_text("x")
    assert run(["data", "synth", str(tmp_path), "--labelled", "1", "--unlabelled", "0", "--size", "32"]) == 2
    assert str(tmp_path) in capsys.readouterr().err


# ------------------------------------------------------------------------------- the health report


def _photo(path: Path, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (10, 12, 3), dtype=np.uint8)).save(path)


def _mask01(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mask = np.zeros((10, 12), np.uint8)
    mask[:5] = 1
    Image.fromarray(mask).save(path)


def _json_report(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, dict]:
    capsys.readouterr()
    code = run(args)
    return code, json.loads(capsys.readouterr().out)


def test_check_json_to_stdout_holds_every_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for i, name in enumerate(("a", "b", "c")):
        _photo(tmp_path / "imgs" / f"{name}.tif", seed=i)
    _mask01(tmp_path / "labels/a.png")
    _mask01(tmp_path / "labels/b.png")
    code, report = _json_report(capsys, ["data", "check", str(tmp_path), "--json", "-"])
    assert code == 0
    for key in ("layout", "layout_reason", "pairs", "unlabelled", "mask_like", "classes", "image_size"):
        assert key in report
    for key in ("mask_coverage", "problems", "risks", "images_dir", "masks_dir", "masks_skipped"):
        assert key in report
    assert report["layout"] == "pairs" and "imgs/ + labels/" in report["layout_reason"]
    assert (report["pairs"], report["unlabelled"]) == (2, 1)
    assert report["mask_coverage"]["mean"] == pytest.approx(0.5)
    assert report["risks"] == [] and report["mask_like"]["count"] == 0


def test_check_reports_masks_beside_images_and_strict_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for i in range(3):
        _photo(tmp_path / "images" / f"case{i}.png", seed=i)
        _mask01(tmp_path / "annotations" / f"{i:03d}.png")  # nothing pairs them with the images
    assert run(["data", "check", str(tmp_path)]) == 0  # a risk, not a problem: plain check passes
    text = capsys.readouterr().out
    assert "3 files look like masks; set data.masks_dir" in text and "unlabelled images" in text
    code, report = _json_report(capsys, ["data", "check", str(tmp_path), "--strict", "--json", "-"])
    assert code == 1
    assert report["unlabelled"] == 3 and report["mask_like"]["count"] == 3
    assert "3 files look like masks; set data.masks_dir" in report["risks"]
    assert run(["data", "check", str(tmp_path), "--strict"]) == 1
    assert "risk: 3 files look like masks" in capsys.readouterr().out


def test_check_strict_passes_a_clean_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _pair(tmp_path, "a")
    _pair(tmp_path, "b")
    assert run(["data", "check", str(tmp_path), "--strict"]) == 0
    assert "no risk found" in capsys.readouterr().out


def test_check_explicit_folders_and_bad_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _photo(tmp_path / "scans/a.tif")
    _mask01(tmp_path / "truth/a.png")
    _mask01(tmp_path / "truth/zz.png")
    args = ["data", "check", str(tmp_path), "--images", "scans", "--masks", "truth"]
    code, report = _json_report(capsys, [*args, "--json", "-"])
    assert code == 1  # truth/zz.png has no image: a problem
    assert report["pairs"] == 1 and report["images_dir"] == str(tmp_path / "scans")
    assert any("zz.png" in p for p in report["problems"])
    for images, masks in (("nope", "truth"), ("scans", "empty")):
        (tmp_path / "empty").mkdir(exist_ok=True)
        assert run(["data", "check", str(tmp_path), "--images", images, "--masks", masks]) == 2
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(err) == 1, err
        assert str(tmp_path / images) in err[0] and str(tmp_path / masks) in err[0]
        assert "Traceback" not in err[0]


# ------------------------------------------------------------------- groups and duplicates (issue 8)


def _busi_like(root: Path) -> None:
    """Two classes of 3 scans each; 'b/b2' has the same pixels as 'a/a0' with another mask, and 'a/a1_copy'
    is a resized JPEG of 'a/a1' with the same (resized) mask."""
    from tests.data.test_duplicates import resized_jpeg, scan

    def put(name: str, image: np.ndarray, rows: int) -> None:
        path = root / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path)
        mask = np.zeros(image.shape[:2], np.uint8)
        mask[:rows] = 255
        Image.fromarray(mask).save(root / f"{name}_mask.png")

    for i in range(3):
        put(f"a/a{i}", scan(i), 20)
        put(f"b/b{i}", scan(10 + i), 30)
    put("b/b2", scan(0), 50)  # the same pixels as a/a0, another class and mask
    put("a/a1_copy", resized_jpeg(scan(1)), 14)  # 0.7 x 96 px: 20 rows -> 14


def test_check_lists_duplicates_with_classes_and_masks_and_uses_the_cache(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEACHSEG_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "data"
    _busi_like(root)
    code, report = _json_report(capsys, ["data", "check", str(root), "--quick", "--json", "-"])
    assert code == 0  # duplicates are risks, not problems
    dups = report["duplicates"]
    (exact,) = dups["exact"]
    assert exact["ids"] == ["a/a0.png", "b/b2.png"] and exact["classes"] == ["a", "b"]
    assert exact["masks_agree"] is False
    (near,) = dups["near"]
    assert near["ids"] == ["a/a1.png", "a/a1_copy.png"] and near["masks_agree"] is True
    assert near["distance"] <= dups["threshold"] == 10
    assert report["groups"] == dups["groups"] == 7 - 2 and dups["grouped_by"] == ["duplicates"]
    assert any("identical images with different classes or masks" in r for r in report["risks"])
    assert dups["decoded"] == 7
    # the second check reads every hash from the cache
    code, again = _json_report(capsys, ["data", "check", str(root), "--quick", "--strict", "--json", "-"])
    assert code == 1 and again["duplicates"]["decoded"] == 0 and again["duplicates"]["hashed"] == 7
    assert run(["data", "check", str(root), "--quick"]) == 0
    text = capsys.readouterr().out
    assert "exact: a/a0.png (a) = b/b2.png (b): masks differ" in text
    assert "near (" in text and "a/a1.png (a) = a/a1_copy.png (a): masks agree" in text
    assert "groups: 5 of labelled images (by duplicates)" in text


def test_check_counts_tile_manifest_slides_as_groups(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from teachseg.io import write_json

    monkeypatch.setenv("TEACHSEG_CACHE_DIR", str(tmp_path / "cache"))
    for k, slide in enumerate(("s1", "s2")):
        names = [f"{slide}_x{32 * i}_y0" for i in range(3)]
        for i, name in enumerate(names):
            _photo(tmp_path / "images" / f"{name}.png", seed=10 * k + i)
            _mask01(tmp_path / "masks" / f"{name}.png")
        write_json(tmp_path / f"{slide}_tiles.json", {"tiles": [{"name": n} for n in names]})
    code, report = _json_report(capsys, ["data", "check", str(tmp_path), "--json", "-"])
    assert code == 0 and report["pairs"] == 6
    assert report["groups"] == 2 and report["duplicates"]["slides"] == 2
    assert report["duplicates"]["grouped_by"] == ["tile manifests"]
    assert report["duplicates"]["exact"] == [] and report["duplicates"]["near"] == []


def test_check_reports_the_busi_duplicate_pair(
    shared_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    busi = shared_dir / "data" / "busi"
    if not busi.is_dir():
        pytest.skip(f"BUSI not found at {busi}")
    monkeypatch.setenv("TEACHSEG_CACHE_DIR", str(tmp_path / "cache"))
    code, report = _json_report(capsys, ["data", "check", str(busi), "--quick", "--json", "-"])
    assert code == 0
    (pair,) = report["duplicates"]["exact"]
    assert pair["ids"] == ["benign/benign (433).png", "malignant/malignant (145).png"]
    assert pair["classes"] == ["benign", "malignant"] and pair["masks_agree"] is False
    assert any("benign/benign (433).png" in r for r in report["risks"])
    assert report["groups"] < report["pairs"]  # near duplicates of one scan share a group
