"""The report's document model: a :class:`Report` of :class:`Section` s holding tables and figures.

Section builders fill it; the writer (``writer.py``) and the HTML page (``html.py``) only read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from teachseg.reports.readers import Warnings
from teachseg.reports.tables.model import Table


@dataclass
class Figure:
    """A rendered figure: its file stem, title, caption and PNG bytes."""

    key: str
    title: str
    caption: str
    png: bytes


Block = Table | Figure


@dataclass
class Section:
    """A titled part of the report, with an optional introduction and caveat, holding tables and figures."""

    id: str
    title: str
    intro: str = ""
    blocks: list[Block] = field(default_factory=list)
    alert: str = ""  # a caveat shown prominently above the blocks (e.g. a selection-biased comparison)


@dataclass
class Report:
    """The whole report: what was run (setup, config, command) and its sections in page order."""

    kind: str
    title: str
    run_dir: Path
    sections: list[Section] = field(default_factory=list)
    setup: list[tuple[str, Any]] = field(default_factory=list)
    config: dict[str, Any] | None = None
    command: str = ""
    config_hash: str = ""
    warnings: Warnings = field(default_factory=Warnings)

    def tables(self) -> list[Table]:
        """Every table, in page order."""
        return [b for s in self.sections for b in s.blocks if isinstance(b, Table)]

    def figures(self) -> list[Figure]:
        """Every figure, in page order."""
        return [b for s in self.sections for b in s.blocks if isinstance(b, Figure)]
