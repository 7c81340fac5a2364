"""Report tables laid out like the study's Tables 2-7, rendered as CSV, Markdown, LaTeX and HTML.

A :class:`Table` holds raw values; each renderer formats them (4 decimals for people, 6 for CSV).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from teachseg.reports.runs import TrainRun
from teachseg.reports.stats import Paired, summarize


@dataclass(frozen=True)
class PlusMinus:
    mean: float
    sd: float
    digits: int | None = None  # overrides the renderer's precision (e.g. 1 for epochs)


@dataclass(frozen=True)
class Interval:
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
        return self.short if (self.groups and self.short) else self.columns

    def text_columns(self) -> set[int]:
        """Columns holding text (left-aligned when rendered); the first column always is."""
        return {0} | {i for row in self.rows for i, c in enumerate(row) if isinstance(c, str)}


def fmt(value: Cell, digits: int = 4) -> str:
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
    if p is None:
        return note or "n/a"
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}"


# --- renderers ------------------------------------------------------------------------------------------


def to_csv(table: Table) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(table.columns)
    for row in table.rows + table.footer:
        w.writerow([fmt(c, 6) if not isinstance(c, str) else c for c in row])
    return buf.getvalue()


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def to_markdown(table: Table) -> str:
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
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text).replace("±", r"$\pm$").replace("–", "--")


def to_latex(table: Table) -> str:
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


# --- builders -------------------------------------------------------------------------------------------


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def _int(v: Any) -> int | None:
    f = _num(v)
    return int(f) if f is not None and math.isfinite(f) else None


def has_test(runs: Sequence[TrainRun | None]) -> bool:
    return any(r is not None and _num(r.get("test_dice")) is not None for r in runs)


def _stat_rows(columns: list[list[Any]], digits: list[int | None]) -> list[list[Cell]]:
    sums = [summarize(col) for col in columns]
    mean_row: list[Cell] = ["Mean ± SD"] + [
        PlusMinus(s.mean, s.sd, d) for s, d in zip(sums, digits, strict=True)
    ]
    ci_row: list[Cell] = ["95% CI (t)"] + [
        Interval(s.ci_low, s.ci_high, d) for s, d in zip(sums, digits, strict=True)
    ]
    return [mean_row, ci_row]


def findings_table(
    arch: str, role: str, runs: Sequence[tuple[int | None, TrainRun | None]], *, key: str
) -> Table:
    """Teacher or Student findings for one architecture (the study's Tables 2, 3, 5, 6)."""
    test = has_test([r for _, r in runs])
    cols = ["Seed", "Training Loss", "Validation Dice", "Validation Jaccard", "Optimum Epoch"]
    fields = ["train_loss", "val_dice", "val_jaccard", "best_epoch"]
    if test:
        cols += ["Test Dice", "Test Jaccard"]
        fields += ["test_dice", "test_jaccard"]
    rows: list[list[Cell]] = []
    for seed, run in runs:
        if run is None:
            rows.append([seed] + [None] * len(fields))
            continue
        vals: list[Cell] = [_int(run.get(f)) if f == "best_epoch" else _num(run.get(f)) for f in fields]
        rows.append([seed if seed is not None else _int(run.get("seed"))] + vals)
    digits = [1 if f == "best_epoch" else None for f in fields]
    footer = (
        _stat_rows([[r[i + 1] for r in rows] for i in range(len(fields))], digits) if len(rows) > 1 else []
    )
    enc = next((r.get("encoder") for _, r in runs if r is not None and r.get("encoder")), "resnet34")
    return Table(
        key=key,
        title=f"{arch_label(arch)} Architecture with {enc_label(enc)} Base: {role} Findings",
        columns=cols,
        rows=rows,
        footer=footer,
        notes=["Training loss is at the optimum (best validation Dice) epoch; 95% CI is t-based over seeds."],
    )


def comparison_table(
    arch: str, pairs: Sequence[tuple[int | None, TrainRun | None, TrainRun | None, str]], *, key: str
) -> Table:
    """Teacher and Student side by side with an Average row (the study's Tables 4 and 7)."""
    test = has_test([t for _, t, _, _ in pairs] + [s for _, _, s, _ in pairs])
    fields = ["train_loss", "val_dice", "val_jaccard"] + (["test_dice", "test_jaccard"] if test else [])
    short = ["TL", "VD", "VJ"] + (["TD", "TJ"] if test else [])
    rows: list[list[Cell]] = []
    for seed, teacher, student, chosen in pairs:
        row: list[Cell] = [seed]
        for run in (teacher, student):
            row += [_num(run.get(f)) if run is not None else None for f in fields]
        row.append(chosen)
        rows.append(row)
    n = len(fields)
    footer: list[list[Cell]] = []
    if rows:
        sums = [summarize([r[i + 1] for r in rows]) for i in range(2 * n)]
        footer = [
            ["Average"] + [s.mean if s.n else None for s in sums] + [""],
            ["SD"] + [s.sd for s in sums] + [""],
            ["95% CI (t)"] + [Interval(s.ci_low, s.ci_high) for s in sums] + [""],
        ]
    columns = ["Seed"] + [f"Teacher {s}" for s in short] + [f"Student {s}" for s in short] + ["Student model"]
    enc = next((t.get("encoder") for _, t, _, _ in pairs if t is not None and t.get("encoder")), "resnet34")
    legend = "Training Loss (TL), Validation Dice (VD), Validation Jaccard (VJ)"
    if test:
        legend += ", Test Dice (TD), Test Jaccard (TJ)"
    return Table(
        key=key,
        title=f"{arch_label(arch)} Architecture with {enc_label(enc)} Base Comparison",
        columns=columns,
        rows=rows,
        footer=footer,
        notes=[legend + ". Teacher = generation 0."],
        groups=[("", 1), ("Teacher", n), ("Student", n), ("", 1)],
        short=["Seed"] + short + short + ["Student model"],
    )


SELECTION_BIASED = "selection-biased"
SELECTION_BIAS_NOTE = (
    "Rows marked selection-biased have no test split: they compare the models on the validation images "
    "that chose both models' best epochs and whether the Student replaced the Teacher, so their "
    "differences are optimistic. Set data.test_fraction (e.g. 0.2) to hold out test images that no "
    "decision has seen, and compare on those."
)


def selection_biased(split: str) -> bool:
    """Whether a comparison on ``split`` ("test", "val" or "test+val") used the images that chose the models."""
    return "val" in split.split("+")


def split_label(split: str) -> str:
    """The split's name, marked selection-biased when it includes the validation images."""
    return f"{split} ({SELECTION_BIASED})" if selection_biased(split) else split


def paired_table(rows_in: Sequence[tuple[str, str, str, str, Paired]], *, key: str = "paired_dice") -> Table:
    """Student minus Teacher per-image Dice: rows of (scope, seed(s), split, student, result).

    ``split`` is "test", "val" (no test split: the row is marked selection-biased) or "test+val".
    """
    rows: list[list[Cell]] = []
    for scope, seeds, split, student, res in rows_in:
        rows.append(
            [
                scope,
                seeds,
                split_label(split),
                student,
                res.n,
                res.mean_diff,
                Interval(res.ci_low, res.ci_high),
                fmt_p(res.p_value, res.note),
                f"{res.wins} / {res.losses}",
            ]
        )
    notes = [
        "Pairs are the same images scored by Teacher (gen0) and Student; test split when present, else "
        "validation. Images (n) counts independent images: in the all-seeds rows each image's difference is "
        "first averaged over the seeds that scored it, and Overall averages the architectures' per-image "
        "means, so repeated seeds never count as extra images. Bootstrap: 5000 seeded resamples of images; "
        "Wilcoxon signed-rank over images, two-sided; better / worse counts images."
    ]
    if any(selection_biased(split) for _, _, split, _, _ in rows_in):
        notes.append(SELECTION_BIAS_NOTE)
    return Table(
        key=key,
        title="Teacher versus Student: paired per-image Dice difference (Student − Teacher)",
        columns=[
            "Scope",
            "Seed",
            "Split",
            "Student",
            "Images (n)",
            "Mean ΔDice",
            "95% bootstrap CI",
            "Wilcoxon p",
            "Better / worse",
        ],
        rows=rows,
        notes=notes,
    )


def lineage_table(
    lineage: dict[str, Any] | None, gens: dict[int, TrainRun], *, key: str, title: str
) -> Table:
    cols = [
        "Gen",
        "Role",
        "Arch",
        "Train Loss",
        "Val Dice",
        "Val Jaccard",
        "Test Dice",
        "Best Epoch",
        "Pseudo images",
        "Mean conf.",
        "Decision",
    ]
    rows: list[list[Cell]] = []
    entries = [g for g in (lineage or {}).get("generations") or [] if isinstance(g, dict)]
    if not entries:
        entries = [{"generation": g, "role": "teacher" if g == 0 else "student"} for g in gens]
    quality = any(_num((e.get("pseudo") or {}).get("dice_vs_withheld_masks")) is not None for e in entries)
    if quality:
        cols.insert(-1, "Pseudo Dice*")
    for e in entries:
        g = _int(e.get("generation"))
        run = gens.get(g) if g is not None else None
        raw_pseudo = e.get("pseudo")
        pseudo: dict[str, Any] = raw_pseudo if isinstance(raw_pseudo, dict) else {}

        def pick(name: str, e: dict[str, Any] = e, run: TrainRun | None = run) -> Any:
            v = e.get(name)
            return v if v is not None else (run.get(name) if run is not None else None)

        rows.append(
            [
                g,
                e.get("role"),
                pick("arch"),
                _num(pick("train_loss")),
                _num(pick("val_dice")),
                _num(pick("val_jaccard")),
                _num(pick("test_dice")),
                _int(pick("best_epoch")),
                _int(pseudo.get("n_images")),
                _num(pseudo.get("mean_confidence")),
            ]
            + ([_num(pseudo.get("dice_vs_withheld_masks"))] if quality else [])
            + [e.get("decision")]
        )
    notes = []
    if quality:
        notes.append("* Pseudo Dice: the pseudo-labels scored against the masks withheld by label_fraction.")
    if lineage and lineage.get("final_generation") is not None:
        notes.append(f"Final model: generation {lineage.get('final_generation')}.")
    if lineage and lineage.get("skipped_bad"):
        notes.append(f"Skipped as bad: {lineage.get('skipped_bad')}.")
    return Table(key=key, title=title, columns=cols, rows=rows, notes=notes)


def per_class_table(series: dict[str, dict[str, list[float]]], *, key: str, title: str) -> Table:
    """Per-class Dice of one or more models (e.g. Teacher and Student) side by side."""
    classes = sorted({c for per in series.values() for c in per})
    rows: list[list[Cell]] = []
    for cls in classes + (["all"] if len(classes) > 1 else []):
        row: list[Cell] = [cls]
        for per in series.values():
            vals = (
                [v for c, vs in per.items() for v in vs]
                if cls == "all" and "all" not in per
                else per.get(cls, [])
            )
            s = summarize(vals)
            row += [s.n, s.mean, s.sd, Interval(s.ci_low, s.ci_high)]
        rows.append(row)
    sub = ["Images", "Mean Dice", "SD", "95% CI (t)"]
    names = list(series)
    if len(names) == 1:
        return Table(key=key, title=title, columns=["Class"] + sub, rows=rows)
    return Table(
        key=key,
        title=title,
        columns=["Class"] + [f"{n} {c}" for n in names for c in sub],
        rows=rows,
        groups=[("", 1)] + [(n, len(sub)) for n in names],
        short=["Class"] + sub * len(names),
    )


def worst_table(items: Sequence[tuple[str, str, dict[str, Any]]], *, key: str = "worst_cases") -> Table:
    rows: list[list[Cell]] = [
        [
            run,
            split,
            r.get("id"),
            r.get("class"),
            _num(r.get("dice")),
            _num(r.get("jaccard")),
            _int(r.get("gt_pixels")),
            _int(r.get("pred_pixels")),
        ]
        for run, split, r in items
    ]
    return Table(
        key=key,
        title="Worst cases (lowest per-image Dice of the reported model)",
        columns=["Run", "Split", "Image", "Class", "Dice", "Jaccard", "GT pixels", "Pred pixels"],
        rows=rows,
    )


def run_summary_table(runs: Sequence[tuple[str, TrainRun]], *, key: str = "summary") -> Table:
    fields = [
        "arch",
        "seed",
        "train_loss",
        "val_dice",
        "val_jaccard",
        "best_epoch",
        "test_dice",
        "test_jaccard",
        "n_train",
        "n_val",
        "n_test",
        "n_pseudo",
        "wall_seconds",
    ]
    cols = [
        "Run",
        "Arch",
        "Seed",
        "Train Loss",
        "Val Dice",
        "Val Jaccard",
        "Best Epoch",
        "Test Dice",
        "Test Jaccard",
        "Train",
        "Val",
        "Test",
        "Pseudo",
        "Wall (s)",
    ]
    rows: list[list[Cell]] = []
    for name, run in runs:
        row: list[Cell] = [name]
        for f in fields:
            v = run.get(f)
            if f in {"seed", "best_epoch", "n_train", "n_val", "n_test", "n_pseudo"}:
                row.append(_int(v))
            elif f == "arch":
                row.append(v)
            elif f == "wall_seconds":
                fv = _num(v)
                row.append(round(fv, 1) if fv is not None else None)
            else:
                row.append(_num(v))
        rows.append(row)
    return Table(key=key, title="Run summary", columns=cols, rows=rows)


_ARCH_LABELS = {
    "linknet": "LinkNet",
    "fpn": "FPN",
    "unet": "U-Net",
    "unetplusplus": "U-Net++",
    "deeplabv3plus": "DeepLabV3+",
}


def arch_label(arch: str | None) -> str:
    return _ARCH_LABELS.get(str(arch).lower(), str(arch))


def enc_label(enc: str | None) -> str:
    return {"resnet34": "ResNet34", "resnet18": "ResNet18", "resnet50": "ResNet50"}.get(
        str(enc).lower(), str(enc)
    )
