"""Broken model folders (teachseg.json, config.json, safetensors) and run folders read by ``report``."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from teachseg.models import (
    META_FILE,
    ModelMeta,
    build_model,
    check_model_folder,
    load_model_folder,
    save_model_folder,
)
from teachseg.reports.readers import Warnings
from teachseg.reports.runs import load
from tests.fuzz.conftest import check, mutations
from tests.fuzz.test_structured import _with_keys, json_values
from tests.reports.fakeruns import make_dataset, make_train_run

FUZZ = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("model") / "model"
    model = build_model("unet", "resnet18")
    save_model_folder(model, folder, ModelMeta("unet", "resnet18", image_size=32))
    return folder


def _copy(src: Path, dst: Path) -> Path:
    """A copy of a folder whose files are links (cheap); a test writes a real file over the one it breaks."""
    shutil.copytree(src, dst, copy_function=lambda a, b: Path(b).symlink_to(Path(a).resolve()))
    return dst


def _replace(path: Path, blob: bytes) -> None:
    path.unlink()
    path.write_bytes(blob)


@FUZZ
@given(obj=_with_keys(list(ModelMeta.model_fields)))
def test_teachseg_json_any_json(obj: Any, model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = _copy(model_dir, tmp_path_factory.mktemp("m") / "model")
    _replace(folder / META_FILE, json.dumps(obj).encode())
    check(lambda p: check_model_folder(p.parent), folder / META_FILE)


def test_model_folder_mutations(model_dir: Path, tmp_path: Path, fuzz_flips: int) -> None:
    n = 0
    for name in (META_FILE, "config.json"):
        for _label, blob in mutations((model_dir / name).read_bytes(), 7, fuzz_flips // 2):
            folder = _copy(model_dir, tmp_path / f"m{n}")
            n += 1
            _replace(folder / name, blob)
            check(lambda p: load_model_folder(p.parent), folder / name)
    weights = (model_dir / "model.safetensors").read_bytes()
    header = 8 + int.from_bytes(weights[:8], "little")
    rng = random.Random(3)
    variants: list[bytes] = [b"", weights[:4], weights[: header // 2], weights[: header + 100], weights[:-1]]
    variants.append((2**62).to_bytes(8, "little") + weights[8:])  # huge declared header
    for _ in range(fuzz_flips // 2):  # flips in the JSON header, where they change the meaning
        b = bytearray(weights)
        b[rng.randrange(header)] ^= 1 << rng.randrange(8)
        variants.append(bytes(b))
    for blob in variants:
        folder = _copy(model_dir, tmp_path / f"m{n}")
        n += 1
        _replace(folder / "model.safetensors", blob)
        check(lambda p: load_model_folder(p.parent), folder / "model.safetensors")


def test_model_folder_loads(model_dir: Path) -> None:
    assert check(lambda p: load_model_folder(p.parent), model_dir / META_FILE) is None


# ------------------------------------------------------------------------------------------ run folders


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("runs")
    ids, masks = make_dataset(base / "data", n=8)
    path = base / "run"
    make_train_run(path, ids=ids, masks=masks, root=base / "data")
    return path


def _report_files(run: Path) -> list[Path]:
    return sorted(p for p in run.rglob("*") if p.is_file() and p.suffix in (".json", ".csv", ".yaml"))


def _load_run(path: Path) -> None:
    load(path, Warnings())


def test_run_folder_mutations(run_dir: Path, tmp_path: Path, fuzz_flips: int) -> None:
    files = _report_files(run_dir)
    assert files
    for i, rel in enumerate(f.relative_to(run_dir) for f in files):
        for label, blob in mutations((run_dir / rel).read_bytes(), i, max(2, fuzz_flips // 4)):
            run = _copy(run_dir, tmp_path / f"r{i}_{label}")
            _replace(run / rel, blob)
            check(lambda p, run=run: _load_run(run), run / rel)
        run = _copy(run_dir, tmp_path / f"r{i}_gone")
        (run / rel).unlink()
        check(lambda p, run=run: _load_run(run), run / rel)


@FUZZ
@given(obj=json_values, which=st.sampled_from(["summary.json", "split.json"]))
def test_run_json_any_shape(
    obj: Any, which: str, run_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    run = _copy(run_dir, tmp_path_factory.mktemp("r") / "run")
    if not (run / which).is_file():
        pytest.skip(f"no {which} in the fake run")
    _replace(run / which, json.dumps(obj).encode())
    check(lambda p: _load_run(run), run / which)


def test_run_folder_loads(run_dir: Path) -> None:
    warn = Warnings()
    load(run_dir, warn)
    assert not warn.messages


def test_report_on_broken_run_folder_is_never_unexpected(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """End to end: ``teachseg report`` on a run whose files are garbage warns or fails in one line."""
    from teachseg.cli import run

    files = [f.relative_to(run_dir) for f in _report_files(run_dir)]
    for i, rel in enumerate(files[:3]):
        folder = _copy(run_dir, tmp_path / f"rep{i}")
        _replace(folder / rel, b"\x00\xff{[garbage")
        capsys.readouterr()
        code = run(["report", str(folder), "--out", str(tmp_path / f"out{i}")])
        err = capsys.readouterr().err
        assert code in (0, 1, 2) and "unexpected" not in err, err
