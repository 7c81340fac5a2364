"""What a killed run was writing (hidden temporary files and work folders) is removed when the job resumes,
and nothing else is."""

from __future__ import annotations

from pathlib import Path

from teachseg.io import remove_stale_temporaries


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_stale_temporaries_are_removed_and_outputs_kept(tmp_path: Path) -> None:
    stale = [
        _touch(tmp_path / "checkpoints" / ".last.ab12cd_3.tmp.ckpt"),  # atomic_path
        _touch(tmp_path / "gen1" / "checkpoints" / ".best.zz99yy88.tmp.ckpt"),
        _touch(tmp_path / "pseudo" / "gen1" / ".img_001.k2j3h4g5.tmp.png"),
        _touch(tmp_path / ".teachseg-probeq1w2e3r4"),  # ensure_writable_dir
        _touch(tmp_path / ".model.a1b2c3d4" / "model.safetensors"),  # save_model_folder's mkdtemp
        _touch(tmp_path / ".report.tmp-12345" / "report.html"),  # write_report's stage
    ]
    kept = [
        _touch(tmp_path / "checkpoints" / "last.ckpt"),
        _touch(tmp_path / "summary.json"),
        _touch(tmp_path / ".gitignore"),
        _touch(tmp_path / ".cache" / "x.tmp"),
        _touch(tmp_path / "model" / "model.safetensors"),
    ]
    # one level only without recursive=True, and never a folder
    assert remove_stale_temporaries(tmp_path) == [tmp_path / ".teachseg-probeq1w2e3r4"]
    removed = remove_stale_temporaries(tmp_path, recursive=True)
    assert sorted(removed) == sorted(p for p in stale[:3] + [stale[4].parent, stale[5].parent])
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in kept)
    assert remove_stale_temporaries(tmp_path / "missing", recursive=True) == []


def test_tile_removes_half_written_tiles_of_a_killed_run(tmp_path: Path) -> None:
    from teachseg.data.synth_slide import synthetic_slide
    from teachseg.data.tile_slides import TileOptions, tile_slide

    slide = tmp_path / "s.tif"
    synthetic_slide(slide, 256, tissue_fraction=0.6, mpp=0.5, seed=2, tile=128)
    out = tmp_path / "tiles"
    half = _touch(out / "unlabelled" / ".s_x0_y0.abcd1234.tmp.png")
    tile_slide(slide, out, None, TileOptions(size=64, min_tissue=0.2))
    assert not half.exists()
    assert list((out / "unlabelled").glob("*.png"))


def test_report_removes_the_stage_of_a_killed_report(tmp_path: Path) -> None:
    from teachseg.reports.document import Report
    from teachseg.reports.writer import write_report

    stale = _touch(tmp_path / ".report.tmp-99999" / "report.html")  # another, killed, process's stage
    html = write_report(Report("train", "empty", tmp_path), tmp_path / "report")
    assert html.is_file() and not stale.parent.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]
