"""Report figures (PNG bytes), drawn with matplotlib's Agg backend; matplotlib is imported lazily."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from teachseg.reports.readers import Warnings

# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
TP_RGB = (0, 158, 115)
FP_RGB = (230, 159, 0)
FN_RGB = (86, 180, 233)
SERIES = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]


def _rgb(c: tuple[int, int, int]) -> tuple[float, float, float]:
    return (c[0] / 255, c[1] / 255, c[2] / 255)


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "font.family": "DejaVu Sans",
            "font.size": 9,
            "axes.titlesize": 10,
            "axes.labelsize": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "legend.frameon": False,
            "figure.dpi": 100,
            "text.usetex": False,
        }
    )
    return plt


def plain(text: Any, limit: int = 60) -> str:
    """User text made safe for matplotlib (no mathtext), shortened for titles."""
    s = str(text).replace("$", r"\$")
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _to_png(fig: Any) -> bytes:
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, facecolor="white")
    plt.close(fig)
    return buf.getvalue()


# --- images ---------------------------------------------------------------------------------------------


def read_image(path: Path, warn: Warnings | None, *, gray: bool, required: bool = True) -> np.ndarray | None:
    """Read a PNG (or any Pillow image) as uint8; None (and a warning) when missing or unreadable."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        if required and warn is not None:
            warn.add(path, "missing")
        return None
    try:
        with Image.open(path) as im:
            im.load()
            arr = np.asarray(im.convert("L" if gray else "RGB"))
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        if warn is not None:
            warn.add(path, f"unreadable image, skipped ({type(exc).__name__})")
        return None
    return arr


def _fit(img: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if img.shape[:2] == shape[:2]:
        return img
    from PIL import Image

    return np.asarray(Image.fromarray(img).resize((shape[1], shape[0]), Image.Resampling.BILINEAR))


def error_map(gt: np.ndarray, pred: np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
    """RGB map: true positives, false positives and false negatives coloured over a dimmed image."""
    h, w = gt.shape
    if base is None:
        out = np.full((h, w, 3), 245, np.uint8)
    else:
        g = base.mean(axis=2) if base.ndim == 3 else base
        out = np.repeat((g * 0.35 + 40).astype(np.uint8)[..., None], 3, axis=2)
    out[gt & pred] = TP_RGB
    out[~gt & pred] = FP_RGB
    out[gt & ~pred] = FN_RGB
    return out


@dataclass
class Example:
    """One image for an overlay row."""

    label: str
    prob: np.ndarray  # uint8 probability
    gt: np.ndarray  # uint8 mask (0/255)
    image: np.ndarray | None
    dice: float | None


def overlay_figure(examples: Sequence[Example], title: str, threshold: float = 0.5) -> bytes:
    """Rows of image | ground truth | prediction | error map."""
    plt = _plt()
    from matplotlib.patches import Patch

    n = len(examples)
    aspect = examples[0].gt.shape[0] / max(1, examples[0].gt.shape[1])
    fig, axes = plt.subplots(
        n, 4, figsize=(10, (2.0 * aspect + 0.25) * n + 0.9), squeeze=False, layout="constrained"
    )
    heads = ["Image", "Ground truth", "Prediction (probability)", "Error map"]
    for r, ex in enumerate(examples):
        gt = ex.gt > 127
        prob = _fit(ex.prob, gt.shape)
        pred = prob >= int(round(threshold * 255))
        img = _fit(ex.image, gt.shape) if ex.image is not None else None
        ax = axes[r]
        if img is not None:
            ax[0].imshow(img, cmap="gray" if img.ndim == 2 else None)
        else:
            ax[0].text(
                0.5, 0.5, "source image\nnot available", ha="center", va="center", color="#777", fontsize=9
            )
        ax[1].imshow(gt, cmap="gray", vmin=0, vmax=1)
        ax[2].imshow(prob, cmap="magma", vmin=0, vmax=255)
        ax[3].imshow(error_map(gt, pred, img))
        score = f"Dice {ex.dice:.3f}" if ex.dice is not None and math.isfinite(ex.dice) else "Dice –"
        ax[0].set_ylabel(
            f"{plain(ex.label, 34)}\n{score}", fontsize=8, rotation=0, ha="right", va="center", labelpad=8
        )
        for c, a in enumerate(ax):
            a.set_xticks([])
            a.set_yticks([])
            a.grid(False)
            for s in a.spines.values():
                s.set_visible(False)
            if r == 0:
                a.set_title(heads[c])
    handles = [
        Patch(color=_rgb(TP_RGB), label="true positive"),
        Patch(color=_rgb(FP_RGB), label="false positive"),
        Patch(color=_rgb(FN_RGB), label="false negative"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=3)
    fig.suptitle(plain(title, 110), fontsize=11, fontweight="bold")
    return _to_png(fig)


def curves_figure(series: Sequence[tuple[str, Sequence[dict[str, Any]]]], title: str) -> bytes:
    """Training loss and validation Dice per epoch, one colour per model (Teacher, Student...)."""
    plt = _plt()
    fig, (ax_l, ax_d) = plt.subplots(1, 2, figsize=(10, 3.4), layout="constrained")
    for i, (label, rows) in enumerate(series):
        colour = SERIES[i % len(SERIES)]
        ep = [r["epoch"] for r in rows]
        ax_l.plot(ep, [r["train_loss"] for r in rows], color=colour, label=f"{plain(label)} train")
        if any(isinstance(r.get("val_loss"), float) and math.isfinite(r["val_loss"]) for r in rows):
            ax_l.plot(
                ep,
                [r["val_loss"] for r in rows],
                color=colour,
                ls="--",
                alpha=0.8,
                label=f"{plain(label)} val",
            )
        dice = [r["val_dice"] for r in rows]
        ax_d.plot(ep, dice, color=colour, label=plain(label), marker="o" if len(ep) < 25 else None, ms=3)
        finite = [(e, d) for e, d in zip(ep, dice, strict=True) if math.isfinite(d)]
        if finite:
            be, bd = max(finite, key=lambda t: t[1])
            ax_d.scatter([be], [bd], s=60, facecolors="none", edgecolors=colour, linewidths=1.5, zorder=5)
    ax_l.set(title="Loss", xlabel="Epoch", ylabel="Loss")
    ax_d.set(title="Validation Dice (circle = best epoch)", xlabel="Epoch", ylabel="Dice")
    for ax in (ax_l, ax_d):
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize=8)
    fig.suptitle(plain(title, 110), fontsize=11, fontweight="bold")
    return _to_png(fig)


@dataclass
class PseudoExample:
    """One pseudo-label to show: its label, the soft map and (if found) the source image."""

    label: str
    soft: np.ndarray  # uint8 soft pseudo-label
    image: np.ndarray | None


def pseudo_figure(examples: Sequence[PseudoExample], title: str) -> bytes:
    """Rows of image | soft pseudo-label | confidence |2p - 1|."""
    plt = _plt()
    n = len(examples)
    aspect = examples[0].soft.shape[0] / max(1, examples[0].soft.shape[1])
    fig, axes = plt.subplots(
        n, 3, figsize=(8.2, (2.1 * aspect + 0.2) * n + 0.6), squeeze=False, layout="constrained"
    )
    heads = ["Image", "Soft pseudo-label p", "Confidence |2p − 1|"]
    last = None
    for r, ex in enumerate(examples):
        p = ex.soft.astype(np.float32) / 255.0
        conf = np.abs(2 * p - 1)
        ax = axes[r]
        if ex.image is not None:
            img = _fit(ex.image, ex.soft.shape)
            ax[0].imshow(img, cmap="gray" if img.ndim == 2 else None)
        else:
            ax[0].text(
                0.5, 0.5, "source image\nnot available", ha="center", va="center", color="#777", fontsize=9
            )
        ax[1].imshow(p, cmap="magma", vmin=0, vmax=1)
        last = ax[2].imshow(conf, cmap="viridis", vmin=0, vmax=1)
        ax[0].set_ylabel(
            f"{plain(ex.label, 34)}\nmean conf. {conf.mean():.3f}",
            fontsize=8,
            rotation=0,
            ha="right",
            va="center",
            labelpad=8,
        )
        for c, a in enumerate(ax):
            a.set_xticks([])
            a.set_yticks([])
            a.grid(False)
            for sp in a.spines.values():
                sp.set_visible(False)
            if r == 0:
                a.set_title(heads[c])
    if last is not None:
        fig.colorbar(last, ax=axes[:, 2].tolist(), fraction=0.05, pad=0.02, label="confidence")
    fig.suptitle(plain(title, 110), fontsize=11, fontweight="bold")
    return _to_png(fig)


def dice_distribution_figure(series: dict[str, dict[str, list[float]]], title: str) -> bytes:
    """Per-class Dice box plots with the individual images, side by side per model."""
    plt = _plt()
    classes = sorted({c for per in series.values() for c in per})
    fig, ax = plt.subplots(
        figsize=(max(5.0, 1.6 * len(classes) * max(1, len(series)) + 1.5), 3.6), layout="constrained"
    )
    k = max(1, len(series))
    width = 0.8 / k
    rng = np.random.default_rng(0)
    for i, (label, per) in enumerate(series.items()):
        colour = SERIES[i % len(SERIES)]
        pos, data = [], []
        for j, c in enumerate(classes):
            vals = [v for v in per.get(c, []) if math.isfinite(v)]
            if vals:
                pos.append(j + (i - (k - 1) / 2) * width)
                data.append(vals)
        if not data:
            continue
        bp = ax.boxplot(data, positions=pos, widths=width * 0.8, patch_artist=True, showfliers=False)
        for b in bp["boxes"]:
            b.set(facecolor=colour, alpha=0.25, edgecolor=colour)
        for part in ("whiskers", "caps", "medians"):
            for line in bp[part]:
                line.set(color=colour)
        for x, vals in zip(pos, data, strict=True):
            ax.scatter(
                x + rng.uniform(-width * 0.25, width * 0.25, len(vals)),
                vals,
                s=9,
                color=colour,
                alpha=0.7,
                zorder=3,
            )
        ax.plot([], [], color=colour, lw=6, alpha=0.4, label=plain(label))
    ax.set_xticks(range(len(classes)))
    ax.set_xticklabels([plain(c, 24) for c in classes])
    ax.set(xlabel="Class", ylabel="Per-image Dice", ylim=(-0.02, 1.02))
    ax.set_title(plain(title, 110), fontweight="bold")
    if len(series) > 1:
        ax.legend(fontsize=8, loc="lower left")
    return _to_png(fig)


def dice_vs_labels_figure(
    series: dict[str, list[tuple[float, float, float]]], fractions: Sequence[float], ceiling: float
) -> bytes:
    """Test Dice against label fraction: one line per method of ``(fraction, mean, sd)`` points, and the
    fully supervised ceiling as a dashed line (NaN: none)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for method, points in series.items():
        xs, ys, es = zip(*points, strict=True)
        ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=method)
    if not math.isnan(ceiling):
        ax.axhline(ceiling, color="grey", linestyle="--", linewidth=1, label="ceiling (all masks)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(fractions), [f"{f:g}" for f in fractions])
    ax.set_xlabel("label fraction (share of training images with masks)")
    ax.set_ylabel("test Dice (mean ± SD over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _to_png(fig)
