"""Build realistic fake run folders (the files teachseg train / selftrain / experiment write), quickly.

Images are tiny PNGs; per-image metrics are computed from the stored predictions, so tables and figures
agree with each other the way they do for real runs.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

H, W = 40, 48


def _png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def _mask(rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    cy, cx = rng.uniform(12, H - 12), rng.uniform(12, W - 12)
    ry, rx = rng.uniform(5, 11), rng.uniform(6, 14)
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def make_dataset(
    root: Path, n: int = 12, seed: int = 0, extra_ids: tuple[str, ...] = ()
) -> tuple[list[str], dict[str, Any]]:
    """BUSI-like folder of small RGB images; returns the ids and a hidden {id: mask} map."""
    rng = np.random.default_rng(seed)
    ids = list(extra_ids)  # first, so that they land in the validation split
    ids += [
        f"{'benign' if i % 2 else 'malignant'}/{'benign' if i % 2 else 'malignant'} ({i}).png"
        for i in range(n)
    ]
    masks = {}
    for i in ids:
        m = _mask(rng)
        img = (rng.normal(90, 18, (H, W, 3)) + m[..., None] * 70).clip(0, 255).astype(np.uint8)
        if (
            "<" not in i
        ):  # ids that are not valid file names on every OS stay image-less (figures still render)
            _png(root / i, img)
        masks[i] = m
    return ids, masks


def _key(image_id: str) -> str:
    return (
        re.sub(r"[^A-Za-z0-9._-]+", "_", image_id).strip("_")
        + "_"
        + hashlib.sha1(image_id.encode()).hexdigest()[:6]
    )


def _score(gt: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    tp = float((gt & pred).sum())
    fp = float((~gt & pred).sum())
    fn = float((gt & ~pred).sum())
    dice = 2 * tp / (2 * tp + fp + fn) if (tp + fp + fn) else 1.0
    jac = tp / (tp + fp + fn) if (tp + fp + fn) else 1.0
    return {
        "dice": dice,
        "jaccard": jac,
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "gt_pixels": int(gt.sum()),
        "pred_pixels": int(pred.sum()),
    }


def config_dict(name: str, root: Path, arch: str = "linknet", seed: int = 42, **extra: Any) -> dict[str, Any]:
    cfg = {
        "name": name,
        "output_dir": "runs",
        "seed": seed,
        "data": {
            "root": str(root),
            "val_fraction": 0.2,
            "test_fraction": 0.2,
            "label_fraction": 1.0,
            "image_size": 64,
        },
        "model": {"arch": arch, "encoder": "resnet34", "encoder_weights": None},
        "loss": {"bce_weight": 1.0, "dice_weight": 1.0},
        "train": {"epochs": 6, "lr": 0.001, "threshold": 0.5},
        "selftrain": {"max_generations": 2},
        "experiment": {"archs": ["linknet", "fpn"], "seeds": [21, 42]},
    }
    cfg.update(extra)
    return cfg


def split_dict(ids: list[str], root: Path, seed: int, test: bool = True) -> dict[str, Any]:
    n = len(ids)
    n_val = max(2, n // 5)
    n_test = max(2, n // 5) if test else 0
    return {
        "train": ids[n_val + n_test :],
        "val": ids[:n_val],
        "test": ids[n_val : n_val + n_test],
        "unlabelled": [],
        "label_dropped": [],
        "seed": seed,
        "val_fraction": 0.2,
        "test_fraction": 0.2 if test else 0.0,
        "label_fraction": 1.0,
        "group_regex": None,
        "classes": {i: i.split("/")[0] if "/" in i else None for i in ids},
        "root": str(root),
    }


def make_train_run(
    path: Path,
    *,
    ids: list[str],
    masks: dict[str, np.ndarray],
    root: Path,
    arch: str = "linknet",
    seed: int = 42,
    quality: float = 0.8,
    epochs: int = 6,
    n_pseudo: int = 0,
    test: bool = True,
    config: dict[str, Any] | None = None,
) -> Path:
    rng = np.random.default_rng(seed * 7 + int(quality * 100) + n_pseudo)
    path.mkdir(parents=True, exist_ok=True)
    cfg = config or config_dict(path.name, root, arch, seed)
    (path / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    split = split_dict(ids, root, seed, test)
    (path / "split.json").write_text(json.dumps(split, indent=2))
    rows = []
    best_epoch = max(1, epochs - 1)
    for e in range(1, epochs + 1):
        tl = 0.6 * np.exp(-0.45 * e) + 0.02 + rng.uniform(0, 0.01)
        vd = quality - 0.35 * np.exp(-0.6 * e) + (0.01 if e == best_epoch else 0.0)
        rows.append((e, tl, tl * 1.2, vd, vd / (2 - vd)))
    with open(path / "metrics.csv", "w") as fh:
        fh.write("epoch,train_loss,val_loss,val_dice,val_jaccard\n")
        for r in rows:
            fh.write(",".join(f"{v:.6f}" if isinstance(v, float) else str(v) for v in r) + "\n")
    index = {}
    per_split = {}
    for sname in ("val", "test"):
        lines = ["id,class,dice,jaccard,precision,recall,gt_pixels,pred_pixels"]
        scores = []
        for i in split[sname]:
            gt = masks[i]
            noise = rng.normal(0, 1 - quality, gt.shape)
            shift = int(rng.integers(0, 4 if quality > 0.7 else 8))
            prob = np.clip(np.roll(gt, shift, axis=1) * 0.85 + 0.08 + noise * 0.4, 0, 1)
            key = _key(i)
            index[i] = key
            _png(path / "pred" / sname / f"{key}_prob.png", (prob * 255).astype(np.uint8))
            _png(path / "pred" / sname / f"{key}_gt.png", (gt * 255).astype(np.uint8))
            s = _score(gt, prob >= 0.5)
            scores.append(s)
            cls = split["classes"].get(i) or ""
            lines.append(
                f'"{i}",{cls},{s["dice"]:.6f},{s["jaccard"]:.6f},{s["precision"]:.6f},{s["recall"]:.6f},{s["gt_pixels"]},{s["pred_pixels"]}'
            )
        if split[sname]:
            (path / f"{sname}_per_image.csv").write_text("\n".join(lines) + "\n")
            per_split[sname] = scores
    (path / "pred" / "index.json").write_text(json.dumps(index, indent=2))
    best = rows[best_epoch - 1]
    test_scores = per_split.get("test")
    summary = {
        "arch": arch,
        "encoder": "resnet34",
        "seed": seed,
        "epochs": epochs,
        "best_epoch": best_epoch,
        "train_loss": best[1],
        "val_loss": best[2],
        "val_dice": best[3],
        "val_jaccard": best[4],
        "test_dice": float(np.mean([s["dice"] for s in test_scores])) if test_scores else None,
        "test_jaccard": float(np.mean([s["jaccard"] for s in test_scores])) if test_scores else None,
        "wall_seconds": 12.5,
        "images_per_second": 40.0,
        "n_train": len(split["train"]),
        "n_val": len(split["val"]),
        "n_test": len(split["test"]),
        "n_pseudo": n_pseudo,
        "model_dir": "model",
    }
    (path / "summary.json").write_text(json.dumps(summary, indent=2))
    (path / "model").mkdir(exist_ok=True)
    (path / "model" / "config.json").write_text("{}")
    return path


def make_selftrain_run(
    path: Path,
    *,
    ids: list[str],
    masks: dict[str, np.ndarray],
    root: Path,
    arch: str = "linknet",
    seed: int = 42,
    n_students: int = 2,
    accept: bool = True,
    test: bool = True,
    config: dict[str, Any] | None = None,
) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    cfg = config or config_dict(path.name, root, arch, seed)
    (path / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    (path / "split.json").write_text(json.dumps(split_dict(ids, root, seed, test), indent=2))
    gens = []
    teacher_q = 0.78
    final = 0
    unl = ids[-4:]
    for g in range(n_students + 1):
        q = teacher_q if g == 0 else (teacher_q + 0.04 * g if accept else teacher_q - 0.05 * g)
        run = make_train_run(
            path / f"gen{g}",
            ids=ids,
            masks=masks,
            root=root,
            arch=arch,
            seed=seed,
            quality=q,
            n_pseudo=0 if g == 0 else len(unl),
            test=test,
            config=cfg,
        )
        s = json.loads((run / "summary.json").read_text())
        pseudo = None
        if g > 0:
            pdir = path / "pseudo" / f"gen{g}"
            items = []
            rng = np.random.default_rng(g + seed)
            for i in unl:
                soft = np.clip(masks[i] * 0.8 + 0.1 + rng.normal(0, 0.12, masks[i].shape), 0, 1)
                arr = (soft * 255).astype(np.uint8)
                key = _key(i)
                _png(pdir / f"{key}.png", arr)
                conf = np.abs(2 * soft - 1)
                items.append(
                    {
                        "id": i,
                        "file": f"{key}.png",
                        "sha256": "0" * 64,
                        "mean_confidence": float(conf.mean()),
                        "confident_share": float((conf > 0.2).mean()),
                        "positive_share": float((soft > 0.5).mean()),
                    }
                )
            stats = {
                k: float(np.mean([it[k] for it in items]))
                for k in ("mean_confidence", "confident_share", "positive_share")
            }
            stats["n_images"] = len(items)
            (pdir / "manifest.json").write_text(
                json.dumps(
                    {"generation": g, "teacher": f"gen{g - 1}", "images": items, "stats": stats}, indent=2
                )
            )
            pseudo = {**stats, "dice_vs_withheld_masks": 0.8 + 0.01 * g}
            if accept:
                final = g
        gens.append(
            {
                "generation": g,
                "role": "teacher" if g == 0 else "student",
                **{
                    k: s[k]
                    for k in (
                        "arch",
                        "encoder",
                        "seed",
                        "train_loss",
                        "val_dice",
                        "val_jaccard",
                        "test_dice",
                        "best_epoch",
                        "wall_seconds",
                    )
                },
                "run_dir": f"gen{g}",
                "pseudo": pseudo,
                "decision": "initial teacher"
                if g == 0
                else (
                    f"accepted: student beat teacher by +0.0{g}0 val Dice" if accept else "rejected: no gain"
                ),
            }
        )
    (path / "lineage.json").write_text(
        json.dumps({"generations": gens, "final_generation": final, "skipped_bad": []}, indent=2)
    )
    teacher_summary = json.loads((path / "gen0" / "summary.json").read_text())
    best = json.loads((path / f"gen{n_students}" / "summary.json").read_text()) if n_students else None
    (path / "summary.json").write_text(
        json.dumps(
            {
                "final_model": f"gen{final}/model",
                "final_generation": final,
                "teacher": teacher_summary,
                "best_student": best,
                "stopped_because": "max_generations reached" if accept else "no student beat the teacher",
            },
            indent=2,
        )
    )
    return path


def make_experiment(
    path: Path,
    root: Path,
    archs: tuple[str, ...] = ("linknet", "fpn"),
    seeds: tuple[int, ...] = (21, 42),
    n_students: int = 1,
    extra_ids: tuple[str, ...] = (),
    test: bool = True,
) -> Path:
    ids, masks = make_dataset(root, extra_ids=extra_ids)
    path.mkdir(parents=True, exist_ok=True)
    runs = []
    for a in archs:
        for s in seeds:
            d = f"{a}_seed{s}"
            make_selftrain_run(
                path / d,
                ids=ids,
                masks=masks,
                root=root,
                arch=a,
                seed=s,
                n_students=n_students,
                accept=s != seeds[-1],
                test=test,
            )
            runs.append({"arch": a, "student_arch": a, "seed": s, "dir": d, "status": "done"})
    _write_experiment_meta(path, root, archs, seeds, runs)
    return path


def make_replicated_experiment(
    path: Path, root: Path, seeds: tuple[int, ...] = (21, 42, 84), n: int = 30, test: bool = True
) -> Path:
    """An experiment whose seeds are byte-identical copies of one LinkNet self-training run.

    Statistics over images must not change when the same data is repeated as extra seeds.
    """
    import shutil

    ids, masks = make_dataset(root, n=n)
    path.mkdir(parents=True, exist_ok=True)
    source = make_selftrain_run(
        path.parent / f"{path.name}_source", ids=ids, masks=masks, root=root, seed=42, n_students=1, test=test
    )
    runs = []
    for s in seeds:
        d = f"linknet_seed{s}"
        shutil.copytree(source, path / d)
        runs.append({"arch": "linknet", "student_arch": "linknet", "seed": s, "dir": d, "status": "done"})
    _write_experiment_meta(path, root, ("linknet",), seeds, runs)
    return path


def _write_experiment_meta(
    path: Path, root: Path, archs: tuple[str, ...], seeds: tuple[int, ...], runs: list[dict[str, Any]]
) -> None:
    cfg = config_dict(path.name, root)
    (path / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    meta = {
        "name": path.name,
        "archs": list(archs),
        "seeds": list(seeds),
        "runs": runs,
        "config_hash": "abc123def456",
        "command": f"teachseg experiment {path / 'config.yaml'}",
        "started": "2024-05-01T10:00:00",
        "finished": "2024-05-01T12:00:00",
    }
    (path / "experiment.json").write_text(json.dumps(meta, indent=2))
