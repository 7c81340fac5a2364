"""The table model: a :class:`Table` of raw cell values and :func:`fmt`, which formats one cell for people.

A :class:`Table` holds raw values; each renderer formats them (4 decimals for people, 6 for CSV).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PlusMinus:
    """A mean ± standard deviation cell."""

    mean: float
    sd: float
    digits: int | None = None  # overrides the renderer's precision (e.g. 1 for epochs)


@dataclass(frozen=True)
class Interval:
    """A confidence-interval cell, shown as ``[low, high]``."""

    low: float
    high: float
    digits: int | None = None


Cell = Any  # str | int | float | None | PlusMinus | Interval


@dataclass
class Table:
    """A titled table: body rows, then footer rows (averages, intervals) set apart when rendered."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    footer: list[list[Cell]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    groups: list[tuple[str, int]] = field(default_factory=list)  # header band: (label, column span)
    short: list[str] | None = None  # column labels under the band (HTML/LaTeX)

    def header(self) -> list[str]:
        """The column labels shown under the header band (the full names when there is no band)."""
        return self.short if (self.groups and self.short) else self.columns

    def text_columns(self) -> set[int]:
        """Columns holding text (left-aligned when rendered); the first column always is."""
        return {0} | {i for row in self.rows for i, c in enumerate(row) if isinstance(c, str)}


def fmt(value: Cell, digits: int = 4) -> str:
    """One cell as text: ``–`` for missing values, ``digits`` decimals, scientific notation for tiny values."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if value != 0 and abs(value) < 10 ** (-digits):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}f}"
    if isinstance(value, PlusMinus):
        digits = min(digits, value.digits) if value.digits is not None else digits
        if math.isnan(value.sd):
            return fmt(value.mean, digits)
        return f"{fmt(value.mean, digits)} ± {fmt(value.sd, digits)}"
    if isinstance(value, Interval):
        digits = min(digits, value.digits) if value.digits is not None else digits
        if math.isnan(value.low):
            return "–"
        return f"[{fmt(value.low, digits)}, {fmt(value.high, digits)}]"
    return str(value)


def fmt_p(p: float | None, note: str = "") -> str:
    """A p-value as text (``< 0.0001`` below that), or ``note`` when there is none."""
    if p is None:
        return note or "n/a"
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}"


def number(v: Any) -> float | None:
    """``v`` as a float cell, or None when it is not a number (booleans are not)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def integer(v: Any) -> int | None:
    """``v`` as an int cell, or None when it is not a finite number."""
    f = number(v)
    return int(f) if f is not None and math.isfinite(f) else None
