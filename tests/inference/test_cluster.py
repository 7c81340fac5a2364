"""A cohort on a Ray cluster: outputs byte-identical to the single-process run, streamed into one folder,
per-slide failures as rows, finished slides not redone, a dead worker's slide retried elsewhere, a full
output disk stopping the whole cohort as in the single-process run."""

from __future__ import annotations

import csv
import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from teachseg.data.synth_slide import synthetic_slide
from teachseg.errors import ConfigError, DataError, OutputError
from teachseg.inference.cluster import RaySettings, predict_paths_ray, worker_device
from teachseg.inference.options import ModelInfo, PredictOptions
from teachseg.inference.outputs import is_complete
from teachseg.inference.run import predict_paths
from teachseg.io import atomic_path, write_png

from .test_golden_outputs import _comparable, _pattern, _red

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'teachseg[cluster]')")

INFO = ModelInfo(folder="m", arch="unet", encoder="resnet18", image_size=64, mpp=0.5, threshold=0.45)
OPTS = PredictOptions(batch_size=3, min_area_um2=20.0)


def make_red():  # the predictor factory sent to the workers (plain numpy: identical on every process)
    return _red


class KillOnceFactory:
    """Builds a predictor whose first call anywhere in the cluster kills its worker process (marker file)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __call__(self):
        marker = self.marker

        def predictor(images: np.ndarray) -> np.ndarray:
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return _red(images)
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            os._exit(1)  # the worker dies mid-slide, as on an out-of-memory kill

        return predictor


class DiskFullFactory:
    """Builds the red predictor, and makes this worker's output disk "fill up" at slide ``failing``.

    Run on each worker (the factory is what Ray sends), it replaces the worker's GeoJSON writer: the
    ``failing`` slide's write meets ENOSPC half-way through its temporary file (and leaves ``marker``); any
    other slide that reaches its GeoJSON write after that hangs, so it finishes only if it is not cancelled.
    """

    def __init__(self, failing: str, marker: Path):
        self.failing = failing
        self.marker = marker

    def __call__(self):
        from teachseg.inference import writers

        real = getattr(writers.write_geojson, "real", writers.write_geojson)
        failing, marker = self.failing, self.marker

        def write_geojson(path, collection):
            if Path(path).stem == failing:
                with atomic_path(path) as tmp:
                    tmp.write_bytes(b'{"type":"FeatureCollection","feat')
                    marker.touch()
                    raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
            if marker.exists():
                time.sleep(120)  # the disk is full: this slide must be cancelled, not finished
            return real(path, collection)

        write_geojson.real = real  # type: ignore[attr-defined]
        writers.write_geojson = write_geojson
        return _red


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four generated slides, two images and a broken slide."""
    src = tmp_path_factory.mktemp("cohort")
    for i in range(4):
        synthetic_slide(src / f"s{i}.tif", 640, tissue_fraction=0.4, mpp=0.5, seed=i, tile=128)
    write_png(src / "a.png", _pattern(90, 120, 0))
    write_png(src / "b.png", _pattern(200, 150, 1))
    (src / "broken.svs").write_bytes(b"\0" * 64)
    return src


@pytest.fixture(scope="module")
def reference(cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The single-process run of the cohort."""
    out = tmp_path_factory.mktemp("single")
    with pytest.raises(DataError, match="1 of 7 inputs"):
        predict_paths(_red, INFO, [cohort], out, OPTS)
    return out


@pytest.fixture
def local_ray() -> Iterator[None]:
    ray.init(address="local", num_cpus=2, include_dashboard=False)
    try:
        yield
    finally:
        ray.shutdown()


def assert_same_outputs(got: Path, want: Path) -> None:
    names = sorted(p.name for p in want.iterdir())
    assert sorted(p.name for p in got.iterdir()) == names  # nothing hidden left behind either
    for name in names:
        assert _comparable(got / name) == _comparable(want / name), name


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_local_cluster_matches_single_process_and_skips_finished_slides(
    cohort, reference, tmp_path, local_ray
):
    out = tmp_path / "out"
    with pytest.raises(DataError, match=r"1 of 7 inputs could not be read \(broken\.svs\).*failures\.csv"):
        predict_paths_ray(make_red, INFO, [cohort], out, OPTS, RaySettings())
    assert_same_outputs(out, reference)  # masks, TIFFs, GeoJSON, summaries, cohort.csv (input order)
    failures = _rows(out / "failures.csv")
    assert [Path(r["slide"]).name for r in failures] == ["broken.svs"] and failures[0]["fix"]
    assert [r["name"] for r in _rows(out / "cohort.csv")] == ["a", "b", "s0", "s1", "s2", "s3"]

    # rerun with --resume once the broken slide is gone: nothing predicted again; the broken slide's
    # failures.csv row stays (it was never predicted)
    (cohort / "broken.svs").rename(tmp_path / "broken.svs")
    try:
        before = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name.endswith("_summary.json")}
        log: list[str] = []
        done: list[int] = []

        class Progress:
            on_start = on_item = on_tiles = on_advance = on_finish = staticmethod(lambda *a: None)

            @staticmethod
            def on_done(n: int, name: str) -> None:
                done.append(n)

        summaries = predict_paths_ray(
            make_red, INFO, [cohort], out, PredictOptions(batch_size=3, min_area_um2=20.0, resume=True),
            RaySettings(), progress=Progress(), log=log.append,
        )  # fmt: skip
    finally:
        (tmp_path / "broken.svs").rename(cohort / "broken.svs")
    assert len(summaries) == 6 and done == [1, 2, 3, 4, 5, 6]
    assert sum("complete, skipped" in line for line in log) == 6
    after = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name.endswith("_summary.json")}
    assert after == before
    assert [Path(r["slide"]).name for r in _rows(out / "failures.csv")] == ["broken.svs"]

    # --resume with other settings is refused before any slide is sent, naming what differs
    with pytest.raises(ConfigError, match=r"threshold: 0\.45 -> 0\.6"):
        predict_paths_ray(
            make_red, INFO, [cohort], out, PredictOptions(threshold=0.6, resume=True), RaySettings()
        )
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name.endswith("_summary.json")} == after

    # a request no node can meet is refused, not left waiting
    with pytest.raises(ConfigError, match="asks for 1 GPU but the Ray cluster has 0"):
        predict_paths_ray(make_red, INFO, [cohort], tmp_path / "gpu", OPTS, RaySettings(gpus_per_task=1))


@pytest.mark.slow
def test_a_dead_worker_is_retried_and_every_slide_finishes(cohort, reference, tmp_path, local_ray):
    # without retries the slide whose worker died is a failures.csv row and the others finish
    out = tmp_path / "out"
    with pytest.raises(DataError, match="2 of 7 inputs"):
        predict_paths_ray(
            KillOnceFactory(tmp_path / "killed-1"), INFO, [cohort], out, OPTS, RaySettings(max_retries=0)
        )
    died = [r for r in _rows(out / "failures.csv") if "died 1 times" in r["error"]]
    assert len(died) == 1 and "--resume" in died[0]["fix"]
    assert len(_rows(out / "cohort.csv")) == 5
    # nothing of the slide whose worker died is left: no hidden work folder (a full-size raster), no output
    dead = Path(died[0]["slide"]).name.rsplit(".", 1)[0]
    assert not list(out.glob(f"{dead}[._]*")) and not list(out.glob(f".{dead}*"))
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]

    # with retries (the default) the same death costs nothing: every slide, byte-identical
    out2 = tmp_path / "out2"
    marker = tmp_path / "killed-2"
    with pytest.raises(DataError, match=r"1 of 7 inputs could not be read \(broken\.svs\)"):
        predict_paths_ray(KillOnceFactory(marker), INFO, [cohort], out2, OPTS, RaySettings())
    assert marker.is_file()  # a worker really died
    assert_same_outputs(out2, reference)


@pytest.mark.slow
def test_a_full_output_disk_stops_the_cohort_on_the_cluster(cohort, reference, tmp_path, local_ray):
    out = tmp_path / "out"
    marker = tmp_path / "disk-full"
    started = time.monotonic()
    with pytest.raises(OutputError) as info:
        predict_paths_ray(DiskFullFactory("s1", marker), INFO, [cohort], out, OPTS, RaySettings())
    assert marker.is_file() and time.monotonic() - started < 100  # the hanging slides were cancelled
    # the single-process run's one line: the folder, what happened, how many were kept, the fix
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{out}: no space left on the device while predicting s1")
    assert "free some space" in info.value.fix and "--resume" in info.value.fix

    # every slide in cohort.csv is complete and as the single-process run wrote it; nothing else is left:
    # not s1's half-written outputs, not what the cancelled slides wrote, no hidden work folder or temporary
    kept = [r["name"] for r in _rows(out / "cohort.csv")] if (out / "cohort.csv").exists() else []
    # s1 failed; a slide running beside it on the other worker may have written its GeoJSON before the disk
    # "filled" (then it is complete and kept), any later one hung and was cancelled (the time bound above)
    assert "s1" not in kept and set(kept) <= {"a", "b", "s0", "s2", "s3"}
    if kept:
        assert f"stopped after {len(kept)} of 7 inputs" in message
    for name in kept:
        assert is_complete(out, name)
    names = {"a", "b", "s0", "s1", "s2", "s3"}
    assert not [n for n in names - set(kept) if list(out.glob(f"{n}*")) or list(out.glob(f".{n}*"))]
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
    for p in out.iterdir():
        if p.name not in ("cohort.csv", "failures.csv"):
            assert _comparable(p) == _comparable(reference / p.name), p.name
    failures = {Path(r["slide"]).name: r for r in _rows(out / "failures.csv")}
    assert "no space left" in failures["s1.tif"]["error"] and "--resume" in failures["s1.tif"]["fix"]

    # the fix works: once there is space, --resume predicts the rest, byte-identical to one process
    ray.shutdown()  # fresh workers: these ones keep the full-disk writer
    ray.init(address="local", num_cpus=2, include_dashboard=False)
    resume = PredictOptions(batch_size=3, min_area_um2=20.0, resume=True)
    with pytest.raises(DataError, match=r"1 of 7 inputs could not be read \(broken\.svs\)"):
        predict_paths_ray(make_red, INFO, [cohort], out, resume, RaySettings())
    assert_same_outputs(out, reference)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def ray_head(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``ray start --head`` on 127.0.0.1 in its own process group, stopped (that group only) after."""
    port = _free_port()
    exe = Path(sys.executable).parent / "ray"
    if not exe.exists():
        pytest.skip("the ray command is not installed beside this Python")
    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, RAY_AUTH_MODE="disabled")
    env["PYTHONPATH"] = os.pathsep.join([str(repo / "src"), str(repo), env.get("PYTHONPATH", "")])
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    temp = Path("/tmp") / f"teachseg-ray-{port}"  # short: Ray's socket paths must fit 107 bytes
    head = subprocess.Popen(
        [str(exe), "start", "--head", f"--port={port}", "--node-ip-address", "127.0.0.1", "--num-cpus", "2",
         "--include-dashboard", "false", "--temp-dir", str(temp), "--block"],
        env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        else:
            pytest.fail("ray start --head did not listen within 60 s")
        yield f"127.0.0.1:{port}"
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait(10)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
def test_cluster_started_with_ray_start_joined_by_address(cohort, reference, tmp_path, ray_head):
    assert not ray.is_initialized()
    out = tmp_path / "out"
    with pytest.raises(DataError, match="1 of 7 inputs"):
        predict_paths_ray(make_red, INFO, [cohort], out, OPTS, RaySettings(address=ray_head))
    assert not ray.is_initialized()  # the run disconnects after itself
    assert_same_outputs(out, reference)


def test_without_ray_the_flag_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ConfigError, match=r"--ray needs Ray.*pip install 'teachseg\[cluster\]'"):
        predict_paths_ray(make_red, INFO, [tmp_path], tmp_path / "out", OPTS, RaySettings())
    from teachseg.cli import run

    code = run(["predict", str(tmp_path), str(tmp_path), "--out", str(tmp_path / "o"), "--ray", "auto"])
    assert code == 2


def test_cpu_tasks_do_not_use_a_gpu_they_did_not_reserve():
    assert worker_device("auto", RaySettings()) == "cpu"
    assert worker_device("auto", RaySettings(gpus_per_task=0.5)) == "cuda"
    assert worker_device("cuda:1", RaySettings()) == "cuda:1"
    assert RaySettings(cpus_per_task=0.5).threads == 1 and RaySettings(cpus_per_task=3).threads == 3
