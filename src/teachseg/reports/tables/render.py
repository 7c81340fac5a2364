"""Render a :class:`~teachseg.reports.tables.model.Table` as CSV, Markdown or LaTeX (HTML: the page template)."""

from __future__ import annotations

import csv
import io

from teachseg.reports.tables.model import Table, fmt


def to_csv(table: Table) -> str:
    """Header and every row (footer included), numbers with 6 decimals."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(table.columns)
    for row in table.rows + table.footer:
        w.writerow([fmt(c, 6) if not isinstance(c, str) else c for c in row])
    return buf.getvalue()


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def to_markdown(table: Table) -> str:
    """A bold title, a pipe table (footer labels in bold), then the notes in italics."""
    lines = [f"**{_md_cell(table.title)}**", ""]
    lines.append("| " + " | ".join(_md_cell(c) for c in table.columns) + " |")
    lines.append("|" + "|".join("---" for _ in table.columns) + "|")
    for i, row in enumerate(table.rows + table.footer):
        cells = [_md_cell(fmt(c)) for c in row]
        if i >= len(table.rows):
            cells[0] = f"**{cells[0]}**"
        lines.append("| " + " | ".join(cells) + " |")
    for note in table.notes:
        lines += ["", f"_{_md_cell(note)}_"]
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters; ± and – become their math/text forms."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text).replace("±", r"$\pm$").replace("–", "--")


def to_latex(table: Table) -> str:
    """A booktabs ``table`` environment with the header band, a rule above the footer, and the notes."""
    n = len(table.columns)
    out = [r"\begin{table}[ht]", r"\centering", f"\\caption{{{latex_escape(table.title)}}}"]
    out.append(r"\begin{tabular}{l" + "r" * (n - 1) + "}")
    out.append(r"\toprule")
    if table.groups:
        band, start, rules = [], 1, []
        for label, span in table.groups:
            band.append(
                f"\\multicolumn{{{span}}}{{c}}{{{latex_escape(label)}}}" if label else " & ".join([""] * span)
            )
            if label:
                rules.append(f"\\cmidrule(lr){{{start}-{start + span - 1}}}")
            start += span
        out.append(" & ".join(band) + r" \\")
        out.append(" ".join(rules))
    out.append(" & ".join(latex_escape(c) for c in table.header()) + r" \\")
    out.append(r"\midrule")
    for row in table.rows:
        out.append(" & ".join(latex_escape(fmt(c)) for c in row) + r" \\")
    if table.footer:
        out.append(r"\midrule")
        for row in table.footer:
            out.append(" & ".join(latex_escape(fmt(c)) for c in row) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}"]
    for note in table.notes:
        out.append(r"\par\smallskip{\footnotesize " + latex_escape(note) + "}")
    out.append(r"\end{table}")
    return "\n".join(out) + "\n"
