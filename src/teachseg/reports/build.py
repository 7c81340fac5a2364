"""Assemble a report: load the run folder, compute tables and figures, write ``report/``.

The layout of the written folder::

    report/report.html          one self-contained page (figures inlined as data URIs)
    report/tables/<key>.{csv,md,tex}
    report/tables.md, tables.tex  every table in one file, for papers
    report/figures/<key>.png
    report/warnings.txt         the missing or corrupt files (only when there are any)
"""

from __future__ import annotations

import glob
import math
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from teachseg.errors import OutputError
from teachseg.reports import tables as T
from teachseg.reports.runs import Experiment, ExperimentEntry, SelfTrainRun, TrainRun, Warnings, load
from teachseg.reports.stats import image_diffs, mean_per_image, paired_test

N_EXAMPLES = 3
N_WORST = 10


@dataclass
class Figure:
    key: str
    title: str
    caption: str
    png: bytes


@dataclass
class Section:
    id: str
    title: str
    intro: str = ""
    blocks: list[Table | Figure] = field(default_factory=list)
    alert: str = ""  # a caveat shown prominently above the blocks (e.g. a selection-biased comparison)


Table = T.Table


@dataclass
class Report:
    kind: str
    title: str
    run_dir: Path
    sections: list[Section] = field(default_factory=list)
    setup: list[tuple[str, Any]] = field(default_factory=list)
    config: dict[str, Any] | None = None
    command: str = ""
    config_hash: str = ""
    warnings: Warnings = field(default_factory=Warnings)

    def tables(self) -> list[T.Table]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, T.Table)]

    def figures(self) -> list[Figure]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Figure)]


# --- helpers --------------------------------------------------------------------------------------------


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _threshold(run: TrainRun) -> float:
    t = ((run.config or {}).get("train") or {}).get("threshold")
    return float(t) if isinstance(t, (int, float)) and _finite(t) and 0 < t < 1 else 0.5


def _source_image(run: TrainRun, image_id: str) -> Any:
    from teachseg.reports.figures import read_image

    root = (run.split or {}).get("root")
    if not root:
        return None
    root_p = Path(str(root))
    path = root_p / image_id
    try:  # ids are relative to the dataset root; never read outside it
        path.resolve().relative_to(root_p.resolve())
    except (ValueError, OSError):
        return None
    return read_image(path, None, gray=False, required=False)


def _example(run: TrainRun, split: str, row: dict[str, Any], label: str, warn: Warnings) -> Any:
    from teachseg.reports.figures import Example, read_image

    files = run.pred_files(split, str(row["id"]))
    if files is None:
        warn.add(run.path / "pred" / "index.json", f"no stored prediction for '{row['id']}'")
        return None
    prob = read_image(files[0], warn, gray=True)
    gt = read_image(files[1], warn, gray=True)
    if prob is None or gt is None:
        return None
    dice = row.get("dice")
    return Example(
        label=label,
        prob=prob,
        gt=gt,
        image=_source_image(run, str(row["id"])),
        dice=dice if _finite(dice) else None,
    )


def _by_dice(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted((r for r in rows if _finite(r.get("dice"))), key=lambda r: (r["dice"], str(r["id"])))


def _class_of(row: dict[str, Any]) -> str:
    return str(row.get("class") or "all")


def _figure(key: str, title: str, caption: str, draw: Any, *args: Any, **kw: Any) -> Figure | None:
    png = draw(*args, **kw)
    return Figure(key=key, title=title, caption=caption, png=png)


# --- building blocks --------------------------------------------------------------------------------------


def _curves(name: str, gens: dict[int, TrainRun], key: str) -> Figure | None:
    from teachseg.reports.figures import curves_figure

    series = [
        (("Teacher" if g == 0 else f"Student gen{g}"), r.metrics)
        for g, r in sorted(gens.items())
        if r.metrics
    ]
    if not series:
        return None
    return _figure(
        key,
        f"Training curves – {name}",
        "Training and validation loss, and validation Dice per epoch.",
        curves_figure,
        series,
        f"Training curves – {name}",
    )


def _overlays(
    run: TrainRun, split: str, name: str, key: str, warn: Warnings, teacher: TrainRun | None = None
) -> list[Figure]:
    """Fixed examples (Teacher and model side by side), best and worst cases of ``run`` on ``split``."""
    from teachseg.reports.figures import overlay_figure

    rows = run.per_image.get(split) or []
    ranked = _by_dice(rows)
    if not ranked:
        return []
    figs: list[Figure] = []
    thr = _threshold(run)
    fixed_ids = sorted(str(r["id"]) for r in ranked)[:N_EXAMPLES]
    t_rows = {str(r["id"]): r for r in (teacher.per_image.get(split) or [])} if teacher is not None else {}
    ex = []
    for i in fixed_ids:
        if teacher is not None and i in t_rows:
            ex.append(_example(teacher, split, t_rows[i], f"Teacher · {i}", warn))
        r = next(r for r in ranked if str(r["id"]) == i)
        ex.append(_example(run, split, r, (f"Student · {i}" if teacher is not None else i), warn))
    groups = [
        ("fixed", "Fixed examples", [e for e in ex if e is not None]),
        (
            "best",
            "Best cases",
            [_example(run, split, r, str(r["id"]), warn) for r in ranked[::-1][:N_EXAMPLES]],
        ),
        ("worst", "Worst cases", [_example(run, split, r, str(r["id"]), warn) for r in ranked[:N_EXAMPLES]]),
    ]
    for suffix, label, examples in groups:
        examples = [e for e in examples if e is not None]
        if not examples:
            continue
        title = f"{label} – {name} ({split} split)"
        figs.append(
            Figure(
                key=f"{key}_{suffix}",
                title=title,
                caption=f"Image, ground truth, predicted probability and error map at threshold {thr:g}.",
                png=overlay_figure(examples, title, thr),
            )
        )
    return figs


def _pseudo(run: SelfTrainRun, name: str, key: str, warn: Warnings) -> list[Figure]:
    from teachseg.reports.figures import PseudoExample, pseudo_figure, read_image

    figs = []
    teacher = run.teacher or TrainRun(path=run.path, split=run.split)
    if teacher.split is None:
        teacher.split = run.split
    for gen, ps in sorted(run.pseudo.items()):
        images = [i for i in (ps.manifest or {}).get("images") or [] if isinstance(i, dict) and i.get("file")]
        if not images:
            continue
        ranked = sorted(images, key=lambda i: (-(i.get("mean_confidence") or 0.0), str(i.get("id"))))
        chosen = ranked[:2] + [i for i in ranked[-2:] if i not in ranked[:2]]
        examples = []
        for item in chosen:
            soft = read_image(ps.path / str(item["file"]), warn, gray=True)
            if soft is None:
                continue
            examples.append(
                PseudoExample(
                    label=str(item.get("id")), soft=soft, image=_source_image(teacher, str(item.get("id")))
                )
            )
        if examples:
            title = f"Pseudo-labels gen{gen} – {name}"
            figs.append(
                Figure(
                    key=f"{key}_pseudo_gen{gen}",
                    title=title,
                    caption="The two most and the two least confident soft pseudo-labels, with their confidence maps.",
                    png=pseudo_figure(examples, title),
                )
            )
    return figs


def _pseudo_stats_table(runs: list[tuple[str, SelfTrainRun]]) -> T.Table | None:
    rows: list[list[Any]] = []
    for name, run in runs:
        for gen, ps in sorted(run.pseudo.items()):
            st = (ps.manifest or {}).get("stats") or {}
            rows.append(
                [
                    name,
                    gen,
                    (ps.manifest or {}).get("teacher"),
                    st.get("n_images"),
                    st.get("mean_confidence"),
                    st.get("confident_share"),
                    st.get("positive_share"),
                ]
            )
    if not rows:
        return None
    return T.Table(
        key="pseudo_labels",
        title="Pseudo-label sets",
        columns=["Run", "Gen", "Teacher", "Images", "Mean confidence", "Confident share", "Positive share"],
        rows=rows,
    )


def _dice_by_class(rows: list[dict[str, Any]]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if _finite(r.get("dice")):
            out[_class_of(r)].append(float(r["dice"]))
    return dict(out)


def _dice_by_image(rows: list[dict[str, Any]]) -> dict[str, float]:
    return {
        str(r["id"]): float(r["dice"]) for r in rows if r.get("id") is not None and _finite(r.get("dice"))
    }


def _class_series(per_seed: list[dict[str, float]], classes: dict[str, str]) -> dict[str, list[float]]:
    """Per-class Dice with each image averaged over the seeds that scored it (the image is the unit)."""
    out: dict[str, list[float]] = defaultdict(list)
    for image_id, dice in mean_per_image(per_seed).items():
        out[classes.get(image_id, "all")].append(dice)
    return dict(out)


def _common_split(a: TrainRun, b: TrainRun) -> str | None:
    for s in ("test", "val"):
        if a.per_image.get(s) and b.per_image.get(s):
            return s
    return None


def _split_table(runs: list[tuple[str, dict[str, Any] | None]]) -> T.Table:
    rows = []
    for name, split in runs:
        s = split or {}

        def n(k: str, s: dict[str, Any] = s) -> int | None:
            v = s.get(k)
            return len(v) if isinstance(v, list) else None

        rows.append(
            [
                name,
                n("train"),
                n("val"),
                n("test"),
                n("unlabelled"),
                n("label_dropped"),
                s.get("label_fraction"),
                s.get("root"),
            ]
        )
    return T.Table(
        key="splits",
        title="Data splits",
        columns=[
            "Run",
            "Train",
            "Validation",
            "Test",
            "Unlabelled",
            "Masks dropped",
            "Label fraction",
            "Dataset root",
        ],
        rows=rows,
    )


# --- per-kind assembly ------------------------------------------------------------------------------------


def _entries(kind: str, loaded: Experiment | SelfTrainRun) -> list[ExperimentEntry]:
    if isinstance(loaded, Experiment):
        return [e for e in loaded.entries if e.run is not None]
    t = loaded.teacher
    arch = str((t.get("arch") if t else None) or "unknown")
    seed = t.get("seed") if t else None
    return [
        ExperimentEntry(arch=arch, student_arch=None, seed=seed, dir=loaded.name, status="done", run=loaded)
    ]


def _entry_name(e: ExperimentEntry) -> str:
    return f"{T.arch_label(e.arch)} seed {e.seed}" if e.seed is not None else e.dir


def build_selftrain_sections(rep: Report, entries: list[ExperimentEntry], warn: Warnings) -> None:
    by_arch: dict[str, list[ExperimentEntry]] = defaultdict(list)
    for e in entries:
        by_arch[e.arch].append(e)
    paired_rows: list[tuple[str, str, str, str, Any]] = []
    arch_means: list[dict[str, float]] = []  # per architecture: each image's difference averaged over seeds
    all_splits: set[str] = set()
    worst: list[tuple[str, str, dict[str, Any]]] = []
    curves = Section("curves", "Training curves", "Teacher and Student(s) of each run, per epoch.")
    overlays = Section(
        "overlays",
        "Predictions",
        "Error map colours: true positive, false positive, false negative (Okabe–Ito palette).",
    )
    pseudo = Section("pseudo", "Pseudo-labels")
    dist = Section("distribution", "Dice per class")
    worst_sec = Section("worst", "Worst cases")
    for arch, group in by_arch.items():
        group.sort(key=lambda e: (e.seed is None, e.seed or 0))
        sec = Section(f"arch-{arch}", f"{T.arch_label(arch)} results")
        pairs = []
        seed_diffs: list[dict[str, float]] = []  # per seed: image id -> Student - Teacher
        splits: set[str] = set()
        dist_scores: dict[str, list[dict[str, float]]] = {"Teacher": [], "Student": []}
        classes: dict[str, str] = {}
        for e in group:
            assert e.run is not None
            teacher = e.run.teacher
            student, chosen = e.run.student()
            pairs.append((e.seed, teacher, student, chosen))
            name = _entry_name(e)
            fig = _curves(name, e.run.generations, f"curves_{e.dir}")
            if fig:
                curves.blocks.append(fig)
            if teacher is not None and student is not None:
                split = _common_split(teacher, student)
                if split:
                    d = image_diffs(teacher.per_image[split], student.per_image[split])
                    seed_diffs.append(d)
                    splits.add(split)
                    paired_rows.append((T.arch_label(arch), str(e.seed), split, chosen, paired_test(d)))
                    for label, r in (("Teacher", teacher), ("Student", student)):
                        dist_scores[label].append(_dice_by_image(r.per_image[split]))
                        classes.update(
                            (str(row["id"]), _class_of(row)) for row in r.per_image[split] if row.get("id")
                        )
            reported = student or teacher
            if reported is not None and reported.eval_split:
                split = reported.eval_split
                worst += [(name, split, r) for r in _by_dice(reported.per_image[split])[:N_WORST]]
            if e is group[0] and reported is not None and reported.eval_split:
                figs = _overlays(
                    reported,
                    reported.eval_split,
                    f"{name} {'Student' if student else 'Teacher'}",
                    f"overlay_{e.dir}",
                    warn,
                    teacher if student else None,
                )
                overlays.blocks += [f for f in figs if not f.key.endswith("_worst")]
                worst_sec.blocks += [f for f in figs if f.key.endswith("_worst")]
                pseudo.blocks += _pseudo(e.run, name, f"{e.dir}", warn)
        sec.blocks.append(
            T.findings_table(arch, "Teacher", [(s, t) for s, t, _, _ in pairs], key=f"{arch}_teacher")
        )
        sec.blocks.append(
            T.findings_table(arch, "Student", [(s, st) for s, _, st, _ in pairs], key=f"{arch}_student")
        )
        sec.blocks.append(T.comparison_table(arch, pairs, key=f"{arch}_comparison"))
        rep.sections.append(sec)
        arch_mean = mean_per_image(seed_diffs)
        arch_split = "+".join(s for s in ("test", "val") if s in splits)
        if arch_mean:
            arch_means.append(arch_mean)
            all_splits |= splits
        if len(group) > 1 or len(by_arch) > 1:
            paired_rows.append(
                (
                    f"{T.arch_label(arch)} (all seeds)",
                    ", ".join(str(e.seed) for e in group),
                    arch_split or "–",
                    "as above",
                    paired_test(arch_mean),
                )
            )
        series = {k: _class_series(v, classes) for k, v in dist_scores.items() if any(len(d) for d in v)}
        if series:
            from teachseg.reports.figures import dice_distribution_figure

            where = f"{arch_split} split" + (
                f", {T.SELECTION_BIASED}" if T.selection_biased(arch_split) else ""
            )
            title = f"Per-image Dice by class – {T.arch_label(arch)}"
            dist.blocks.append(
                Figure(
                    f"dice_by_class_{arch}",
                    title,
                    f"Teacher and Student on the paired split ({where}), each image averaged over seeds.",
                    dice_distribution_figure(series, title),
                )
            )
            dist.blocks.append(
                T.per_class_table(
                    series,
                    key=f"{arch}_per_class",
                    title=f"{T.arch_label(arch)}: per-image Dice per class ({where}, images averaged over seeds)",
                )
            )
    all_split = "+".join(s for s in ("test", "val") if s in all_splits)
    if len(by_arch) > 1:
        paired_rows.append(
            ("Overall", "all", all_split or "–", "as above", paired_test(mean_per_image(arch_means)))
        )
    paired_sec = Section(
        "paired",
        "Teacher versus Student",
        "Does the Student beat the Teacher on the same images? Images (n) is the number of independent "
        "images: each image's difference is averaged over seeds before the bootstrap interval and the "
        "Wilcoxon test, so repeated seeds never count as extra images.",
    )
    if T.selection_biased(all_split):
        paired_sec.alert = (
            "Selection-biased comparison: without a test split, Teacher and Student are compared on the "
            "validation images that chose their best epochs and whether the Student replaced the Teacher, "
            "so the rows marked selection-biased are optimistic. Set data.test_fraction (e.g. 0.2) and run "
            "again for an unbiased comparison on held-out test images."
        )
    paired_sec.blocks.append(T.paired_table(paired_rows))
    pst = _pseudo_stats_table([(_entry_name(e), e.run) for e in entries if e.run is not None])
    if pst:
        pseudo.blocks.insert(0, pst)
    lineage = Section("lineage", "Lineage", "Every generation of each seed and why it was kept or rejected.")
    for e in entries:
        assert e.run is not None
        lineage.blocks.append(
            T.lineage_table(
                e.run.lineage, e.run.generations, key=f"lineage_{e.dir}", title=f"Lineage – {_entry_name(e)}"
            )
        )
    worst.sort(key=lambda t: (t[2]["dice"], t[0], str(t[2]["id"])))
    worst_sec.blocks.insert(0, T.worst_table(worst[:N_WORST]))
    rep.sections += [paired_sec, curves, overlays, pseudo, dist, lineage, worst_sec]


def build_train_sections(rep: Report, run: TrainRun, warn: Warnings) -> None:
    sec = Section("results", "Results")
    sec.blocks.append(T.run_summary_table([(run.name, run)]))
    split = run.eval_split
    if split:
        per = _dice_by_class(run.per_image[split])
        sec.blocks.append(
            T.per_class_table({"Model": per}, key="per_class", title=f"Dice per class ({split} split)")
        )
    rep.sections.append(sec)
    curves = Section("curves", "Training curves")
    fig = _curves(run.name, {0: run}, "curves")
    if fig:
        curves.blocks.append(fig)
    rep.sections.append(curves)
    if split:
        from teachseg.reports.figures import dice_distribution_figure

        figs = _overlays(run, split, run.name, "overlay", warn)
        rep.sections.append(
            Section("overlays", "Predictions", blocks=[f for f in figs if not f.key.endswith("_worst")])
        )
        title = f"Per-image Dice by class ({split} split)"
        rep.sections.append(
            Section(
                "distribution",
                "Dice per class",
                blocks=[
                    Figure(
                        "dice_by_class",
                        title,
                        "",
                        dice_distribution_figure({"Model": _dice_by_class(run.per_image[split])}, title),
                    )
                ],
            )
        )
        worst_rows = [(run.name, split, r) for r in _by_dice(run.per_image[split])[:N_WORST]]
        rep.sections.append(
            Section(
                "worst",
                "Worst cases",
                blocks=[T.worst_table(worst_rows)] + [f for f in figs if f.key.endswith("_worst")],
            )
        )


def _config_hash(cfg: dict[str, Any] | None) -> str:
    if not cfg:
        return "unknown"
    import hashlib
    import json

    try:
        from teachseg.config import build_config

        return build_config(cfg, "config.yaml").hash()
    except Exception:  # an older or hand-edited config: hash what is there
        return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _setup_rows(cfg: dict[str, Any] | None, split: dict[str, Any] | None) -> list[tuple[str, Any]]:
    cfg = cfg or {}
    data, model, train, exp = (cfg.get(k) or {} for k in ("data", "model", "train", "experiment"))
    rows: list[tuple[str, Any]] = [
        ("Name", cfg.get("name")),
        ("Dataset root", (split or {}).get("root") or data.get("root")),
        (
            "Architecture / encoder",
            f"{model.get('arch')} / {model.get('encoder')} (weights: {model.get('encoder_weights')})"
            if model
            else None,
        ),
        ("Image size", data.get("image_size")),
        (
            "Validation / test fraction",
            f"{data.get('val_fraction')} / {data.get('test_fraction')}" if data else None,
        ),
        ("Label fraction", data.get("label_fraction")),
        ("Epochs / learning rate", f"{train.get('epochs')} / {train.get('lr')}" if train else None),
        ("Seed", cfg.get("seed")),
        ("Experiment archs / seeds", f"{exp.get('archs')} / {exp.get('seeds')}" if exp else None),
    ]
    return [(k, v) for k, v in rows if v is not None]


def assemble(run_dir: Path, warn: Warnings) -> Report:
    kind, loaded = load(run_dir, warn)
    rep = Report(kind=kind, title="", run_dir=run_dir, warnings=warn)
    if isinstance(loaded, Experiment):
        rep.title = f"Experiment report: {loaded.name}"
        rep.config = loaded.config or next(
            (e.run.config for e in loaded.entries if e.run and e.run.config), None
        )
        entries = _entries(kind, loaded)
        first_split = next((e.run.split for e in entries if e.run and e.run.split), None)
        rep.setup = _setup_rows(rep.config, first_split)
        splits = [(_entry_name(e), e.run.split if e.run else None) for e in entries]
        meta = loaded.meta or {}
        rep.command = str(meta.get("command") or f"teachseg experiment {run_dir / 'config.yaml'}")
        rep.config_hash = str(meta.get("config_hash") or _config_hash(rep.config))
        for key in ("started", "finished"):
            if meta.get(key):
                rep.setup.append((key.capitalize(), meta[key]))
        status = [f"{e.dir}: {e.status}" for e in loaded.entries if e.status != "done" or e.run is None]
        if status:
            rep.setup.append(("Runs not done", ", ".join(status)))
        build_selftrain_sections(rep, entries, warn)
    elif isinstance(loaded, SelfTrainRun):
        rep.title = f"Self-training report: {loaded.name}"
        rep.config = loaded.config or (loaded.teacher.config if loaded.teacher else None)
        rep.setup = _setup_rows(rep.config, loaded.split)
        splits = [(loaded.name, loaded.split or (loaded.teacher.split if loaded.teacher else None))]
        if loaded.summary and loaded.summary.get("stopped_because"):
            rep.setup.append(("Stopped because", loaded.summary["stopped_because"]))
        rep.command = f"teachseg selftrain {run_dir / 'config.yaml'}"
        rep.config_hash = _config_hash(rep.config)
        build_selftrain_sections(rep, _entries(kind, loaded), warn)
    else:
        rep.title = f"Training report: {loaded.name}"
        rep.config = loaded.config
        rep.setup = _setup_rows(rep.config, loaded.split)
        splits = [(loaded.name, loaded.split)]
        rep.command = f"teachseg train {run_dir / 'config.yaml'}"
        rep.config_hash = _config_hash(rep.config)
        build_train_sections(rep, loaded, warn)
    setup = Section("setup", "Setup", blocks=[_split_table(splits)])
    rep.sections.insert(0, setup)
    rep.sections = [s for s in rep.sections if s.blocks]
    return rep


# --- writing ----------------------------------------------------------------------------------------------


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise OutputError("exists and is not a folder", path=out, fix="give --out a folder path")
    if out.is_dir() and any(out.iterdir()) and not (out / "report.html").exists():
        raise OutputError(
            "folder is not empty and holds no earlier report; refusing to replace it",
            path=out,
            fix="give --out an empty or new folder",
        )


def _file_key(key: str, used: set[str]) -> str:
    """A file-system-safe, unique file stem (keys carry run folder names from experiment.json)."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("._")[:80] or "item"
    out, i = base, 2
    while out.lower() in used:
        out, i = f"{base}_{i}", i + 1
    used.add(out.lower())
    return out


def write_report(rep: Report, out: Path) -> Path:
    """Write every output into a staging folder, then swap it into place (no half-written report)."""
    from teachseg.io import ensure_writable_dir, replace_dir, write_bytes, write_text
    from teachseg.reports.html import render_html

    _check_out(out)
    ensure_writable_dir(out.parent)
    stage = out.parent / f".{out.name}.tmp-{os.getpid()}"
    import shutil

    # this run's stage, and those of killed earlier runs (another PID), never swapped into place
    for old in out.parent.glob(f".{glob.escape(out.name)}.tmp-*"):
        shutil.rmtree(old, ignore_errors=True)
    stage.mkdir(parents=True)
    try:
        md, tex = [], []
        used: set[str] = set()
        for t in rep.tables():
            t.key = _file_key(t.key, used)
            write_text(stage / "tables" / f"{t.key}.csv", T.to_csv(t))
            md.append(T.to_markdown(t))
            tex.append(T.to_latex(t))
            write_text(stage / "tables" / f"{t.key}.md", md[-1])
            write_text(stage / "tables" / f"{t.key}.tex", tex[-1])
        write_text(stage / "tables.md", f"# {rep.title}\n\n" + "\n".join(md))
        write_text(stage / "tables.tex", "% needs \\usepackage{booktabs}\n" + "\n".join(tex))
        for f in rep.figures():
            f.key = _file_key(f.key, used)
            write_bytes(stage / "figures" / f"{f.key}.png", f.png)
        if len(rep.warnings):
            write_text(stage / "warnings.txt", "\n".join(rep.warnings) + "\n")
        write_text(stage / "report.html", render_html(rep))
        for p in stage.rglob("*"):  # mkstemp creates 0600 files; a report is meant to be shared
            p.chmod(0o755 if p.is_dir() else 0o644)
        replace_dir(stage, out)
    except BaseException:
        import shutil

        shutil.rmtree(stage, ignore_errors=True)
        raise
    return out / "report.html"
