"""Whole-slide prediction: teachseg end to end against MONAI's sliding_window_inference, and memory scaling.

Both sides run the same trained LinkNet-ResNet34 (trained here for a few dozen steps on the generated
slide's "dark purple" regions, or loaded with ``--model``) with the same tile size:

* teachseg: ``predict`` end to end (reading tiles through OpenSlide, tissue detection, bf16 inference on
  tissue tiles, Gaussian blending to disk, pyramidal TIFF, GeoJSON, overlay and summary);
* MONAI: ``sliding_window_inference`` (Gaussian, overlap 0.25, fp32) on the level-0 image already in memory.

Throughput is tissue megapixels per second on each side; the Dice agreement of the two masks must be at least
0.98. Peak memory of predict is measured in a fresh subprocess for a slide and for one with 4x its area.
Prints ``slide_memory_ratio_4x_area: X.XX`` and, last, ``slide_speedup_vs_monai: X.XX``.

    python benchmarks/bench_slide.py --quick      # a few minutes on a 2-core CPU
    python benchmarks/bench_slide.py              # 8192^2 and 16384^2 memory pair, 3 repeats
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CMU_SMALL = ROOT / ".." / "shared" / "data" / "wsi" / "CMU-1-Small-Region.svs"
TILE = 256
MPP = 0.5


def log(msg: str) -> None:
    print(msg, flush=True)


def make_slide(workdir: Path, size: int, seed: int = 0) -> Path:
    from teachseg.inference.synthetic import synthetic_slide

    path = workdir / f"synthetic_{size}_s{seed}.tif"
    if not path.is_file():
        t = time.perf_counter()
        tmp = path.with_suffix(".partial.tif")
        synthetic_slide(tmp, size, tissue_fraction=0.4, mpp=MPP, seed=seed)
        tmp.replace(path)
        log(f"generated {path.name} ({size}x{size}) in {time.perf_counter() - t:.1f} s")
    return path


def train_model(workdir: Path, steps: int, seed: int = 0, size: int = 4096) -> Path:
    """A few dozen steps of LinkNet-ResNet34 on crops of the synthetic slide, target = tumour (dark purple)."""
    import torch

    from teachseg.inference.synthetic import SyntheticTissue
    from teachseg.models import IMAGENET_MEAN, IMAGENET_STD, ModelMeta, build_model, save_model_folder

    folder = workdir / f"linknet_resnet34_s{seed}_{steps}"  # cached: the same model for every slide size
    if (folder / "teachseg.json").is_file():
        return folder
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    fields = SyntheticTissue(size, size, tissue_fraction=0.4, seed=seed)  # the generator of the slides
    model = build_model("linknet", "resnet34").train().to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    crop, batch = 128, 8
    t = time.perf_counter()
    for step in range(steps):
        xs, ys = [], []
        while len(xs) < batch:
            y0, x0 = (int(v) for v in rng.integers(0, size - crop, 2))
            target = fields.tumour_truth(1, y0, x0, crop, crop)
            tissue = fields._field(fields.tissue, 1, y0, x0, crop, crop) > 0
            if not tissue.any() and rng.random() < 0.7:  # mostly tissue, some glass
                continue
            xs.append(fields.render(1, y0, x0, crop, crop))
            ys.append(target)
        x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float().div(255)
        x = ((x - mean) / std).contiguous(memory_format=torch.channels_last)
        y = torch.from_numpy(np.stack(ys)[:, None].astype(np.float32))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(x)
        logits = logits.float()
        p = torch.sigmoid(logits)
        dice = 1 - (2 * (p * y).sum() + 1) / (p.sum() + y.sum() + 1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y) + dice
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 10 == 0 or step == steps - 1:
            log(f"  train step {step:3d} loss {loss.item():.3f}")
    log(f"trained LinkNet-ResNet34 for {steps} steps in {time.perf_counter() - t:.1f} s")
    model.eval()
    meta = ModelMeta(
        arch="linknet", encoder="resnet34", image_size=TILE, mpp=MPP, summary={"bench": "bench_slide"}
    )
    save_model_folder(model, folder, meta)
    return folder


def run_teachseg(model_dir: Path, slide: Path, out: Path, repeats: int) -> tuple[float, float, dict]:
    from teachseg.inference.run import PredictOptions, load_predictor, predict_paths

    predictor, info = load_predictor(model_dir)
    times, cpu, summary = [], [], {}
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        (summary,) = predict_paths(predictor, info, [slide], out, PredictOptions(), progress=False)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    log(f"  teachseg runs: {', '.join(f'{s:.1f}' for s in times)} s (precision {info.precision})")
    return statistics.median(times), statistics.median(cpu), summary


def run_monai(
    model_dir: Path, slide: Path, repeats: int, crop: int | None
) -> tuple[float, float, np.ndarray]:
    """Median seconds, CPU seconds and mask of MONAI on the level-0 image (or its central ``crop`` square)."""
    import torch
    from monai.inferers import sliding_window_inference

    from teachseg.inference.slides import open_slide
    from teachseg.models import load_model_folder

    model, meta = load_model_folder(model_dir)  # a fresh fp32 copy
    with open_slide(slide) as reader:
        w, h = reader.dimensions
        x0, y0 = ((w - crop) // 2, (h - crop) // 2) if crop else (0, 0)
        image = reader.read(0, x0, y0, crop or w, crop or h)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float().div_(255)
    del image
    x.sub_(torch.tensor(meta.mean).view(1, 3, 1, 1)).div_(torch.tensor(meta.std).view(1, 3, 1, 1))
    times, cpu, mask = [], [], np.zeros(0, bool)
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        with torch.inference_mode():
            logits = sliding_window_inference(x, (TILE, TILE), 8, model, overlap=0.25, mode="gaussian")
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        mask = (torch.sigmoid(logits)[0, 0] >= meta.threshold).numpy()
        del logits
    log(
        f"  monai runs: {', '.join(f'{s:.1f}' for s in times)} s (fp32{f', central {crop}^2 crop' if crop else ''})"
    )
    return statistics.median(times), statistics.median(cpu), mask


def teachseg_mask(out: Path, name: str, threshold: float) -> np.ndarray:
    import tifffile

    with tifffile.TiffFile(out / f"{name}_prob.tif") as tf:
        prob = tf.pages[0].asarray()
    return prob >= int(np.ceil(threshold * 255 - 1e-6))


def dice(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.logical_and(a, b).sum()
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * inter / total)


def compare(
    label: str,
    model_dir: Path,
    slide: Path,
    workdir: Path,
    repeats: int,
    monai_repeats: int,
    crop: int | None,
) -> float:
    """Both sides on one slide; prints throughputs and Dice, returns the speedup (MONAI seconds / teachseg)."""
    out = workdir / f"out_{slide.stem}"
    t_ours, cpu_ours, summary = run_teachseg(model_dir, slide, out, repeats)
    w, h = summary["width"], summary["height"]
    crop = crop if crop and crop < min(w, h) else None
    t_monai, cpu_monai, monai_mask = run_monai(model_dir, slide, monai_repeats, crop)
    ours = teachseg_mask(out, slide.stem, summary["threshold"])
    if crop:  # MONAI's cost is linear in pixels: scale its time from the crop to the whole slide
        x0, y0 = (w - crop) // 2, (h - crop) // 2
        ours = ours[y0 : y0 + crop, x0 : x0 + crop]
        t_monai, cpu_monai = t_monai * w * h / crop**2, cpu_monai * w * h / crop**2
    d = dice(ours, monai_mask)
    tissue_mp = summary["tissue_area_px"] / 1e6
    log(
        f"{label}: {w}x{h}, tissue {tissue_mp:.1f} MP ({tissue_mp / (w * h / 1e6):.0%}), "
        f"tiles {summary['tiles_predicted']}/{summary['tiles_total']}, tumour {monai_mask.mean():.1%} (MONAI mask)"
    )
    log(
        f"{label}_teachseg_tissue_mp_per_s: {tissue_mp / t_ours:.3f}  ({t_ours:.1f} s end to end, {cpu_ours:.0f} cpu-s)"
    )
    extra = f", extrapolated from the {crop}^2 crop" if crop else ""
    log(
        f"{label}_monai_tissue_mp_per_s: {tissue_mp / t_monai:.3f}  ({t_monai:.1f} s inference{extra}, {cpu_monai:.0f} cpu-s)"
    )
    log(f"{label}_dice_teachseg_vs_monai: {d:.4f}{' (on the crop)' if crop else ''}")
    return t_monai / t_ours


def peak_memory_mb(model_dir: Path, slide: Path, out: Path) -> float:
    cmd = [sys.executable, __file__, "--_memory-child", str(model_dir), str(slide), str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return float(json.loads(res.stdout.strip().splitlines()[-1])["peak_rss_mb"])


def _vm_hwm_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def memory_child(model_dir: str, slide: str, out: str) -> None:
    """Peak resident memory of the predict call (the whole process: model, buffers, readers, writers).

    ``ru_maxrss`` is not used: on Linux a child inherits its parent's high-water mark across fork and exec.
    The kernel's per-process high-water mark (VmHWM) is reset once the model is loaded, so the figure is
    the predict call's peak with the model resident.
    """
    from teachseg.inference.run import PredictOptions, load_predictor, predict_paths

    predictor, info = load_predictor(Path(model_dir))
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    predict_paths(predictor, info, [Path(slide)], Path(out), PredictOptions(), progress=False)
    peak = _vm_hwm_mb() or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_rss_mb": peak}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--quick", action="store_true", help="one MONAI run, smaller memory pair (4096^2 vs 8192^2)"
    )
    ap.add_argument("--model", type=Path, help="model folder to use instead of training one here")
    ap.add_argument("--size", type=int, default=8192, help="side of the generated slide")
    ap.add_argument("--steps", type=int, default=60, help="training steps for the benchmark model")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "teachseg-bench-slide")
    ap.add_argument("--_memory-child", nargs=3, dest="memory_child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        memory_child(*args.memory_child)
        return

    workdir = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    repeats, monai_repeats = (1, 1) if args.quick else (3, 3)
    crop = args.size // 2 if args.quick else None  # quick: MONAI on the central quarter, time scaled by area
    slide = make_slide(workdir, args.size)
    model_dir = args.model or train_model(workdir, args.steps)
    log(f"model: {model_dir}")

    speedup = compare("synthetic", model_dir, slide, workdir, repeats, monai_repeats, crop)
    if CMU_SMALL.is_file():
        cmu_speedup = compare("cmu_small", model_dir, CMU_SMALL, workdir, repeats, monai_repeats, None)
        log(f"cmu_small_speedup_vs_monai: {cmu_speedup:.2f}")
    else:
        log(f"cmu_small: skipped ({CMU_SMALL} not found)")

    small_side = args.size // 2 if args.quick else args.size
    small, large = make_slide(workdir, small_side), make_slide(workdir, small_side * 2)
    mem_small = peak_memory_mb(model_dir, small, workdir / "mem_small")
    mem_large = peak_memory_mb(model_dir, large, workdir / "mem_large")
    log(f"peak_rss_mb: {small_side}^2 {mem_small:.0f}, {2 * small_side}^2 {mem_large:.0f}")
    log(f"slide_memory_ratio_4x_area: {mem_large / mem_small:.2f}")
    log(f"slide_speedup_vs_monai: {speedup:.2f}")


if __name__ == "__main__":
    main()
