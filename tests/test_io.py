"""Atomic writes and writable-folder checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from teachseg.errors import OutputError
from teachseg.io import (
    atomic_path,
    ensure_writable_dir,
    read_json,
    replace_dir,
    write_json,
    write_png,
    write_text,
)


def test_atomic_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    write_text(tmp_path / "a.txt", "hello")
    write_json(tmp_path / "b.json", {"p": Path("x"), "v": np.float32(1.5), "arr": np.arange(3)})
    write_png(tmp_path / "c.png", np.zeros((4, 4), np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.json", "c.png"]
    assert (tmp_path / "a.txt").read_text() == "hello"
    assert read_json(tmp_path / "b.json") == {"p": "x", "v": 1.5, "arr": [0, 1, 2]}


def test_failure_inside_atomic_path_keeps_the_old_file(tmp_path: Path) -> None:
    final = tmp_path / "model.bin"
    final.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(final) as tmp:
        tmp.write_bytes(b"partial new")
        raise RuntimeError("killed mid-write")
    assert final.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]


def test_temporary_name_keeps_the_suffix_and_lives_beside_the_target(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "sub" / "x.png") as tmp:
        assert tmp.parent == tmp_path / "sub"
        assert tmp.suffix == ".png"
        assert tmp.name != "x.png"
        tmp.write_bytes(b"1")
    assert (tmp_path / "sub" / "x.png").read_bytes() == b"1"


def test_ensure_writable_dir(tmp_path: Path) -> None:
    assert ensure_writable_dir(tmp_path / "a" / "b").is_dir()
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    # (tests run as root, so permissions would not stop us; a regular file in the path does)
    with pytest.raises(OutputError) as err:
        ensure_writable_dir(blocker / "sub")
    msg = str(err.value)
    assert str(blocker / "sub") in msg
    assert "Fix:" in msg


def test_replace_dir_swaps_folders(tmp_path: Path) -> None:
    final = tmp_path / "model"
    final.mkdir()
    (final / "old.txt").write_text("old")
    new = tmp_path / ".model.tmp"
    new.mkdir()
    (new / "new.txt").write_text("new")
    replace_dir(new, final)
    assert [p.name for p in final.iterdir()] == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_write_json_is_strict_json(tmp_path: Path) -> None:
    import json
    import math

    import numpy as np

    from teachseg.io import write_json

    path = write_json(
        tmp_path / "s.json",
        {"precision": math.nan, "recall": np.float32(0.5), "rows": [{"x": math.inf}, (1.0, np.nan)], "n": 3},
    )
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert data == {"precision": None, "recall": 0.5, "rows": [{"x": None}, [1.0, None]], "n": 3}
