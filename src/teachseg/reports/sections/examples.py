"""Example figures: predictions overlaid on their images (fixed, best, worst) and pseudo-label samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from teachseg.reports.document import Figure
from teachseg.reports.readers import Warnings
from teachseg.reports.runs import SelfTrainRun, TrainRun
from teachseg.reports.sections.common import N_EXAMPLES, by_dice, finite, threshold


def source_image(run: TrainRun, image_id: str) -> Any:
    """The dataset image of ``image_id`` (None when unreadable or outside the dataset root)."""
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
        image=source_image(run, str(row["id"])),
        dice=dice if finite(dice) else None,
    )


def overlay_figures(
    run: TrainRun, split: str, name: str, key: str, warn: Warnings, teacher: TrainRun | None = None
) -> list[Figure]:
    """Fixed examples (Teacher and model side by side), best and worst cases of ``run`` on ``split``.

    The figures' keys end in ``_fixed``, ``_best`` and ``_worst``.
    """
    from teachseg.reports.figures import overlay_figure

    rows = run.per_image.get(split) or []
    ranked = by_dice(rows)
    if not ranked:
        return []
    figs: list[Figure] = []
    thr = threshold(run)
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


def is_worst(fig: Figure) -> bool:
    """Whether ``fig`` is the worst-cases overlay (shown with the worst-cases table, not the predictions)."""
    return fig.key.endswith("_worst")


def pseudo_figures(run: SelfTrainRun, name: str, key: str, warn: Warnings) -> list[Figure]:
    """Per generation: the two most and the two least confident soft pseudo-labels."""
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
                    label=str(item.get("id")), soft=soft, image=source_image(teacher, str(item.get("id")))
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
