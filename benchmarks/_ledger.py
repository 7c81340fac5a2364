"""A ledger of finished benchmark runs, kept in the repository, so that a benchmark longer than one sitting
(or one machine) adds up its runs across sittings instead of starting again.

``bench_ssl_busi.py``'s default mode is about 27 training runs: hours on a 2-core CPU. Its runs already
resume and are reused inside ``bench-output/`` (``teachseg experiment``'s rule), but that folder is scratch
space and does not survive a fresh clone. The ledger keeps what the figures are computed from, per finished
run, and nothing heavy:

* the run's ``config.yaml``, ``run_identity.json``, ``split.json``, ``summary.json`` and ``lineage.json``;
* per generation ``summary.json``, ``metrics.csv``, ``val_per_image.csv``, ``test_per_image.csv`` and the
  model folder's ``teachseg.json`` / ``config.json`` (which record the content hashes of the training images);
* ``provenance.json``: the commit, machine, accelerator, torch version, threads and date of the run.

No weights, checkpoints, predictions or pseudo-labels: a ledger run can be reported, not resumed.

Before a grid runs, :func:`restore` copies ledger runs that ``--out`` lacks into it, so the experiment reuses
them only when its own identity check passes (same result-affecting config; a run whose config drifted is
retrained, as without the ledger). The one field rewritten on the way in is ``data.root``, and only after the
content hashes of every image the run's models trained on are found in the current data folder: the same
BUSI copy lies at different paths on different machines. After the grid, :func:`record` writes every finished
run into the ledger, replacing an older copy of the same run folder atomically.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]

#: Where ``bench_ssl_busi.py`` keeps its ledger (one subfolder per image size and epoch budget).
LEDGER = REPO / "benchmarks" / "results"
PROVENANCE = "provenance.json"
#: Files kept from a run folder (relative to it; ``*`` is one generation folder).
KEEP = (
    "config.yaml",
    "run_identity.json",
    "split.json",
    "summary.json",
    "lineage.json",
    "*/summary.json",
    "*/metrics.csv",
    "*/val_per_image.csv",
    "*/test_per_image.csv",
    "*/select_per_image.csv",
    "*/model/teachseg.json",
    "*/model/config.json",
)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}

Say = Callable[[str], None]


def _finished(run_dir: Path) -> bool:
    from teachseg.selftrain.experiment import finished

    return run_dir.is_dir() and finished(run_dir)


def _kept_files(run_dir: Path) -> list[Path]:
    found: set[Path] = set()
    for pattern in KEEP:
        found.update(p for p in run_dir.glob(pattern) if p.is_file())
    return sorted(found)


def _git(*args: str) -> str | None:
    try:
        res = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance() -> dict[str, Any]:
    """Where and with what the runs being recorded now were made (the recording process's view)."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "recorded": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpu": gpu,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }


def _same_run(a: Path, b: Path) -> bool:
    """Whether two finished run folders hold the same results (identity and lineage equal)."""
    try:
        return all(
            json.loads((a / name).read_text()) == json.loads((b / name).read_text())
            for name in ("run_identity.json", "lineage.json")
        )
    except (OSError, ValueError):
        return False


def record(out_grid: Path, ledger_grid: Path, say: Say = print) -> int:
    """Copy every finished run of ``out_grid`` into ``ledger_grid`` (kept files only); returns how many changed.

    Each run is written to a temporary folder beside its place and renamed into it, so an interrupted copy
    never leaves a half-written run in the ledger.
    """
    if not out_grid.is_dir():
        return 0
    prov: dict[str, Any] | None = None
    changed = 0
    for run in sorted(p for p in out_grid.iterdir() if p.is_dir() and not p.name.startswith(".")):
        # a run restored from the ledger carries its own provenance; it is there already
        if (run / PROVENANCE).is_file() or not _finished(run):
            continue
        dest = ledger_grid / run.name
        if dest.is_dir() and _same_run(run, dest):
            continue
        if prov is None:
            prov = provenance()
        ledger_grid.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{run.name}.", dir=ledger_grid))
        try:
            for src in _kept_files(run):
                target = tmp / src.relative_to(run)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, target)
            (tmp / PROVENANCE).write_text(json.dumps(prov, indent=2) + "\n", encoding="utf-8")
            old = None
            if dest.exists():
                old = ledger_grid / f".{run.name}.old.{os.getpid()}"
                dest.rename(old)
            try:
                tmp.rename(dest)
            except OSError:  # another process recorded this run at the same moment: keep its copy
                if old is not None and not dest.exists():
                    old.rename(dest)
                continue
            finally:
                if old is not None:
                    shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        changed += 1
        say(f"  ledger: recorded {ledger_grid.name}/{run.name}")
    return changed


def _trained_on(run: Path) -> set[str]:
    hashes: set[str] = set()
    for meta in run.glob("*/model/teachseg.json"):
        images = (json.loads(meta.read_text()).get("trained_on") or {}).get("images") or []
        hashes.update(images)
    return hashes


def _data_hashes(root: Path) -> set[str]:
    from teachseg.training.identity import file_sha256

    return {file_sha256(p) for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()}


def _set_data_root(run: Path, root: Path) -> None:
    from teachseg.io import write_json, write_text
    from teachseg.training.identity import RUN_IDENTITY, config_hash

    ident = json.loads((run / RUN_IDENTITY).read_text())
    ident["config"]["data.root"] = str(root)
    ident["config_hash"] = config_hash(ident["config"])
    write_json(run / RUN_IDENTITY, ident)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg.setdefault("data", {})["root"] = str(root)
    write_text(run / "config.yaml", yaml.safe_dump(cfg, sort_keys=False))


def restore(ledger_grid: Path, out_grid: Path, data_root: Path, say: Say = print) -> int:
    """Copy ledger runs that ``out_grid`` has not finished into it; returns how many were copied.

    A ledger run made on another path to the data is taken only when every image its models trained on (by
    content hash) is in ``data_root``; its ``data.root`` is then rewritten to ``data_root``. An unfinished run
    folder in ``out_grid`` is replaced by the finished ledger run.
    """
    if not ledger_grid.is_dir():
        return 0
    hashes: set[str] | None = None
    copied = 0
    for run in sorted(p for p in ledger_grid.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if not (run / PROVENANCE).is_file() or not _finished(run):
            say(f"  ledger: {run.name} is incomplete, skipped")
            continue
        dest = out_grid / run.name
        if _finished(dest):
            continue
        ident = json.loads((run / "run_identity.json").read_text())
        moved = ident.get("config", {}).get("data.root") != str(data_root)
        if moved:
            if hashes is None:
                hashes = _data_hashes(data_root)
            trained = _trained_on(run)
            missing = trained - hashes
            if missing or not trained:
                say(
                    f"  ledger: {run.name} was trained on images not found in {data_root} "
                    f"({len(missing)} missing), not reused"
                )
                continue
        out_grid.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{run.name}.", dir=out_grid))
        try:
            shutil.copytree(run, tmp, dirs_exist_ok=True)
            if moved:
                _set_data_root(tmp, data_root)
            if dest.exists():
                shutil.rmtree(dest)
            tmp.rename(dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        copied += 1
    if copied:
        say(f"  ledger: {copied} finished run(s) restored from {ledger_grid}")
    return copied


def provenance_of(out_grid: Path) -> dict[str, list[str]]:
    """``{description: [run, ...]}`` of the runs in ``out_grid`` that came from the ledger, by machine."""
    groups: dict[str, list[str]] = {}
    for run in sorted(p for p in out_grid.iterdir() if p.is_dir()) if out_grid.is_dir() else []:
        path = run / PROVENANCE
        if not path.is_file():
            continue
        p = json.loads(path.read_text())
        where = (
            p.get("gpu") or f"{p.get('cpu')} ({p.get('cpu_count')} cores, {p.get('torch_threads')} threads)"
        )
        commit = (p.get("git_commit") or "?")[:8] + ("+dirty" if p.get("git_dirty") else "")
        groups.setdefault(f"{where}, torch {p.get('torch')}, commit {commit}", []).append(run.name)
    return groups


def main(argv: list[str] | None = None) -> int:
    """``python benchmarks/_ledger.py OUT_GRID LEDGER_GRID``: record the finished runs of a grid folder (for
    runs whose benchmark was stopped before it could record them itself)."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("out_grid", type=Path, help="a grid folder, e.g. bench-output/ssl-busi/ssl")
    ap.add_argument("ledger_grid", type=Path, help="e.g. benchmarks/results/ssl-busi-128px-40ep/ssl")
    args = ap.parse_args(argv)
    if not args.out_grid.is_dir():
        print(f"error: {args.out_grid} is not a folder; pass the grid folder under --out", file=sys.stderr)
        return 2
    n = record(args.out_grid, args.ledger_grid)
    print(f"{n} run(s) recorded in {args.ledger_grid}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
