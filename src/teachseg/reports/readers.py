"""Tolerant readers for run files: each returns what it could read and records a warning naming the file.

A report can so be built from a half-finished or damaged run; :class:`Warnings` lists what was skipped.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from teachseg.runfiles import NewerSchemaError, RunFile, RunFileError

F = TypeVar("F", bound=RunFile)


@dataclass
class Warnings:
    """Problems found while loading; each message names the file."""

    messages: list[str] = field(default_factory=list)

    def add(self, path: Path, problem: str) -> None:
        """Record ``problem`` with ``path`` (once)."""
        msg = f"{path}: {problem}"
        if msg not in self.messages:
            self.messages.append(msg)

    def __iter__(self):
        return iter(self.messages)

    def __len__(self) -> int:
        return len(self.messages)


# --- tolerant file readers ------------------------------------------------------------------------------


def read_json(path: Path, warn: Warnings, *, required: bool = True) -> Any:
    """The parsed file, or None (with a warning) when missing or corrupt."""
    if not path.is_file():
        if required:
            warn.add(path, "missing")
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        warn.add(path, f"corrupt JSON, skipped ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})")
        return None


def read_run_file(model: type[F], path: Path, warn: Warnings, *, required: bool = True) -> F | None:
    """A typed run file (:mod:`teachseg.runfiles`), or None (with a warning naming the file, and the field
    that does not match) when missing, corrupt, or written by a newer teachseg."""
    data = read_json(path, warn, required=required)
    if data is None:
        return None
    try:
        return model.from_data(data, path=path)
    except NewerSchemaError as exc:
        warn.add(path, f"{exc.message}: skipped; {exc.fix}")
    except RunFileError as exc:
        warn.add(path, f"{exc.message}, skipped")
    return None


def read_yaml(path: Path, warn: Warnings, *, required: bool = True) -> dict[str, Any] | None:
    """The parsed mapping, or None (with a warning) when missing, corrupt or not a mapping."""
    if not path.is_file():
        if required:
            warn.add(path, "missing")
        return None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as exc:
        warn.add(path, f"corrupt YAML, skipped ({type(exc).__name__})")
        return None
    if not isinstance(data, dict):
        warn.add(path, "not a mapping of keys to values, skipped")
        return None
    return data


def _to_number(text: str | None) -> float | str | None:
    if text is None:
        return None
    s = text.strip()
    if s == "" or s.lower() in {"nan", "none", "null"}:
        return math.nan if s.lower() == "nan" else None
    try:
        return float(s)
    except ValueError:
        return s


def read_csv(
    path: Path,
    warn: Warnings,
    required_columns: tuple[str, ...],
    *,
    required: bool = True,
    text_columns=("id", "class"),
) -> list[dict[str, Any]]:
    """Read a CSV into dicts; numeric columns become floats. Bad rows are skipped with one warning."""
    if not path.is_file():
        if required:
            warn.add(path, "missing")
        return []
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            missing = [c for c in required_columns if c not in header]
            if missing:
                warn.add(path, f"corrupt CSV: missing column(s) {', '.join(missing)}, skipped")
                return []
            rows: list[dict[str, Any]] = []
            bad = 0
            for raw in reader:
                row: dict[str, Any] = {}
                ok = True
                for key, value in raw.items():
                    if key is None:
                        continue
                    if key in text_columns:
                        row[key] = value if value not in (None, "") else None
                    else:
                        num = _to_number(value)
                        if isinstance(num, str):
                            ok = False
                        row[key] = num
                if not ok or any(row.get(c) is None and c not in text_columns for c in required_columns):
                    bad += 1
                    continue
                rows.append(row)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        warn.add(path, f"corrupt CSV, skipped ({type(exc).__name__})")
        return []
    if bad:
        warn.add(path, f"{bad} malformed row(s) skipped")
    return rows
