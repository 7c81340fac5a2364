"""Which inputs a ``predict`` run reads, what it names their outputs, and what a killed run left behind.

Input discovery (folders expanded into slides and images, teachseg's own outputs skipped), one distinct
output name per input, the completeness test used by ``--resume``, and the removal of leftovers (hidden
work folders, temporary outputs, ONNX export folders).
"""

from __future__ import annotations

import contextlib
import glob
import shutil
from pathlib import Path

from teachseg.errors import DataError
from teachseg.runfiles import NewerSchemaError, PredictSummary, RunFileError
from teachseg.wsi.readers import SUPPORTED_SUFFIXES

#: The endings of the per-input image outputs (never read back as inputs).
OUTPUT_ENDINGS = ("_prob.tif", "_prob.png", "_mask.png", "_overlay.png")


def discover_inputs(paths: list[Path], out_dir: Path | None = None) -> list[Path]:
    """Expand folders into the slides and images they hold (sorted), skipping teachseg's own outputs."""
    found: list[Path] = []
    out_resolved = out_dir.resolve() if out_dir is not None else None
    for p in paths:
        if not p.exists():
            raise DataError("input not found", path=p, fix="check the path")
        if p.is_file():
            found.append(p)
            continue
        before = len(found)
        for f in sorted(p.rglob("*")):
            if not f.is_file() or f.name.startswith(".") or f.suffix.lower() not in SUPPORTED_SUFFIXES:
                continue
            if f.name.endswith(OUTPUT_ENDINGS):
                continue
            if out_resolved is not None and out_resolved in f.resolve().parents:
                continue
            found.append(f)
        if len(found) == before and len(paths) > 1:
            raise DataError(
                "the folder holds no slide or image",
                path=p,
                fix=f"give a folder holding {', '.join(SUPPORTED_SUFFIXES)}, or leave it out",
            )
    if not found:
        raise DataError(
            "no slides or images found",
            path=paths[0] if len(paths) == 1 else None,
            fix=f"give files or folders holding {', '.join(SUPPORTED_SUFFIXES)}",
        )
    return found


def output_names(inputs: list[Path]) -> list[str]:
    """A distinct output name per input (the file stem; ``_2``, ``_3`` ... on clashes)."""
    seen: dict[str, int] = {}
    names = []
    for p in inputs:
        stem = p.name[: -len(".ome.tif")] if p.name.lower().endswith(".ome.tif") else p.stem
        n = seen.get(stem, 0) + 1
        seen[stem] = n
        names.append(stem if n == 1 else f"{stem}_{n}")
    return names


def is_complete(out_dir: Path, name: str, identity: str | None = None) -> bool:
    """True when ``NAME_summary.json`` (written last) reads and every output it lists is present, with the
    size it had when written (summaries that record sizes).

    ``identity``: the set must also have been made by the prediction of this identity
    (:mod:`teachseg.inference.identity`); a summary that records none is then not complete.
    A damaged summary means the input is predicted again; one from a newer teachseg is refused
    (:class:`~teachseg.runfiles.NewerSchemaError`) rather than overwritten.
    """
    summary = read_summary(out_dir, name)
    if summary is None or (identity is not None and summary.identity != identity):
        return False
    sizes = summary.output_bytes or {}
    for key, file in summary.outputs.items():
        path = out_dir / file
        if not path.is_file() or (key in sizes and path.stat().st_size != sizes[key]):
            return False
    return True


def read_summary(out_dir: Path, name: str) -> PredictSummary | None:
    """``NAME_summary.json``, or None when it is missing or damaged.

    Raises:
        NewerSchemaError: it was written by a newer teachseg.
    """
    path = out_dir / f"{name}_summary.json"
    if not path.is_file():
        return None
    try:
        return PredictSummary.read(path)
    except NewerSchemaError:
        raise
    except RunFileError:
        return None


def output_sizes(out_dir: Path, outputs: dict[str, str]) -> dict[str, int]:
    """The size in bytes of each output (``key -> file name`` in ``out_dir``), as the summary records them."""
    return {key: (out_dir / file).stat().st_size for key, file in outputs.items()}


def remove_stale_work(out_dir: Path, name: str) -> list[Path]:
    """Remove what a killed run left for ``name`` in ``out_dir``; returns the paths removed.

    That is the hidden ``.NAME.work.*`` folder (tiles blended so far, on disk without a record of which
    tiles they were, so it is not reusable) and the hidden temporary files of outputs being renamed into
    place (``.NAME_prob.XXXXXXXX.tmp.tif`` ...).
    """
    stems = [name] + [f"{name}{ending.rsplit('.', 1)[0]}" for ending in (*OUTPUT_ENDINGS, "_summary.json")]
    work = out_dir.glob(f".{glob.escape(name)}.work.*")
    return _remove_all(sorted({*work, *_atomic_temporaries(out_dir, stems)}))


def remove_atomic_temporaries(out_dir: Path, stems: list[str]) -> list[Path]:
    """Remove the temporary files a killed atomic write of ``out_dir/STEM.*`` left (``.STEM.XXXXXXXX.tmp*``)."""
    return _remove_all(sorted(_atomic_temporaries(out_dir, stems)))


def _atomic_temporaries(out_dir: Path, stems: list[str]) -> set[Path]:
    return {p for s in stems for p in out_dir.glob(f".{glob.escape(s)}.{'?' * 8}.tmp*") if p.is_file()}


def output_files(out_dir: Path, name: str) -> list[Path]:
    """Every output file ``name`` can have in ``out_dir`` (whether or not it exists)."""
    finals = [out_dir / f"{name}_summary.json", out_dir / f"{name}.geojson"]
    return finals + [out_dir / f"{name}{ending}" for ending in OUTPUT_ENDINGS]


def output_stamps(out_dir: Path, name: str) -> dict[str, tuple[int, int]]:
    """(inode, mtime) of each existing output of ``name``: what changes when one is written."""
    stamps = {}
    for p in output_files(out_dir, name):
        with contextlib.suppress(OSError):
            st = p.stat()
            stamps[p.name] = (st.st_ino, st.st_mtime_ns)
    return stamps


def remove_unfinished_outputs(out_dir: Path, name: str, before: dict[str, tuple[int, int]]) -> list[Path]:
    """After the prediction of ``name`` failed or was cancelled part-way: when it replaced some outputs
    (``before``: their :func:`output_stamps`), the set is a mix of old and new files, so all of them go (the
    summary first, so a rerun never takes the mix for a finished input). An earlier prediction left
    untouched is kept. Returns what was removed."""
    if output_stamps(out_dir, name) == before:
        return remove_stale_work(out_dir, name)
    return discard_outputs(out_dir, name)


def discard_outputs(out_dir: Path, name: str) -> list[Path]:
    """Remove every output of ``name`` in ``out_dir`` (the summary first, so that no moment leaves a set
    that looks complete), its hidden work folder and temporary files: what an input that failed leaves.
    Returns what was removed."""
    return _remove_all([p for p in output_files(out_dir, name) if p.is_file()]) + remove_stale_work(
        out_dir, name
    )


def remove_stale_exports(out_dir: Path) -> list[Path]:
    """Remove the hidden ONNX export folders and write probes (``.teachseg-export.*``, ``.teachseg-probe*``)
    a killed ``predict`` left behind."""
    return _remove_all(sorted([*out_dir.glob(".teachseg-export.*"), *out_dir.glob(".teachseg-probe*")]))


def _remove_all(paths: list[Path]) -> list[Path]:
    """Delete files and folders (whatever is already gone is ignored); returns ``paths``."""
    for p in paths:
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return paths
