"""Table renderers (CSV, Markdown, LaTeX) and cell formatting."""

from __future__ import annotations

import csv
import io

from teachseg.reports.tables.model import Interval, PlusMinus, Table, fmt, fmt_p
from teachseg.reports.tables.render import to_csv, to_latex, to_markdown


def test_renderers_escape_their_formats():
    tab = Table(
        key="k",
        title="A_title & 100%",
        columns=["Image", "Dice"],
        rows=[["a|b_<x>.png", 0.5]],
        footer=[["Mean", PlusMinus(0.5, 0.1)]],
    )
    rows = list(csv.reader(io.StringIO(to_csv(tab))))
    assert rows == [["Image", "Dice"], ["a|b_<x>.png", "0.500000"], ["Mean", "0.500000 ± 0.100000"]]
    md = to_markdown(tab)
    assert "a\\|b_<x>.png" in md and "**Mean**" in md
    tex = to_latex(tab)
    assert r"A\_title \& 100\%" in tex and r"a|b\_\textless{}x\textgreater{}.png" in tex and r"$\pm$" in tex
    assert r"\toprule" in tex and r"\bottomrule" in tex


def test_fmt_handles_missing_and_small_values():
    assert fmt(None) == "–" and fmt(float("nan")) == "–"
    assert fmt(0.00004) == "4.000e-05"
    assert fmt(Interval(float("nan"), float("nan"))) == "–"
    assert fmt_p(None, "n/a: all differences are zero") == "n/a: all differences are zero"
    assert fmt_p(1e-7) == "< 0.0001"
