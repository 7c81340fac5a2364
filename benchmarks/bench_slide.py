"""Whole-slide prediction: teachseg end to end against MONAI's sliding_window_inference, where the speed-up
comes from, and memory scaling.

Every arm runs the same trained LinkNet-ResNet34 (trained here for a few dozen steps on the generated slide's
"dark purple" regions, or loaded with ``--model``) with the same tile size:

* MONAI fp32: ``sliding_window_inference`` (Gaussian, overlap 0.25, batch 8) on the level-0 image already in
  memory, the model in fp32 and contiguous: MONAI's documented default;
* MONAI bf16 + channels_last: the same call, with teachseg's own ``Predictor`` (the one ``predict`` uses:
  autocast at the precision ``auto`` resolves to, channels_last) as MONAI's predictor, so it blends the same
  probabilities;
* teachseg without tissue mask: ``predict`` end to end on the torch backend with
  ``PredictOptions(tissue_mask=False)``: every tile is predicted, streamed from the slide through OpenSlide,
  Gaussian-blended to disk, and written as a pyramidal TIFF, GeoJSON, overlay and summary;
* teachseg torch: ``predict`` end to end on the torch backend (tissue detection, tissue tiles only);
* teachseg openvino: the same on the OpenVINO backend (when OpenVINO is installed);
* teachseg: what a user gets, i.e. the arm of the backend ``--backend auto`` picks on this machine (printed).

Throughput is tissue megapixels per second on each arm (the same tissue area for all); the Dice agreement of
teachseg's mask with MONAI fp32's must be at least 0.98. The speed-up over MONAI fp32 is split into three
factors whose product it is: precision and layout (MONAI fp32 / MONAI bf16), streaming with the end-to-end
outputs (MONAI bf16 / teachseg without tissue mask; below 1 when streaming and writing cost more than they
save), tissue skipping (teachseg without tissue mask / teachseg torch) and the backend (teachseg torch /
teachseg). Every arm is run once, untimed, on a 1024^2 slide before any is timed, so one-time costs
(imports, first-call allocations) weigh on none. Peak memory of predict is measured in a
fresh subprocess for a slide and for one with 4x its area. Prints ``slide_memory_ratio_4x_area: X.XX`` and,
last, ``slide_speedup_vs_monai: X.XX`` (MONAI fp32 / teachseg).

    python benchmarks/bench_slide.py --quick      # a few minutes on a 2-core CPU
    python benchmarks/bench_slide.py              # 8192^2 and 16384^2 memory pair, 3 repeats
    python benchmarks/bench_slide.py --smoke      # 1024^2 slide, 3 training steps: checks the script runs
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CMU_SMALL = ROOT / ".." / "shared" / "data" / "wsi" / "CMU-1-Small-Region.svs"
TILE = 256
MPP = 0.5


def log(msg: str) -> None:
    print(msg, flush=True)


def make_slide(workdir: Path, size: int, seed: int = 0) -> Path:
    from teachseg.data.synth_slide import synthetic_slide

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

    from teachseg.data.synth_slide import SyntheticTissue
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
        xs: list[Any] = []
        ys: list[Any] = []
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


def auto_backend(model_dir: Path) -> str:
    """The backend ``teachseg predict --backend auto`` runs this model on here."""
    from teachseg.inference.run import load_predictor

    return load_predictor(model_dir, backend="auto")[1].backend


def run_teachseg(
    model_dir: Path, slide: Path, out: Path, repeats: int, tissue_mask: bool = True, backend: str = "torch"
) -> tuple[float, float, dict]:
    from teachseg.inference.options import PredictOptions
    from teachseg.inference.run import load_predictor, predict_paths

    predictor, info = load_predictor(model_dir, backend=backend)
    options = PredictOptions(tissue_mask=tissue_mask)
    times, cpu, summary = [], [], {}
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        (summary,) = predict_paths(predictor, info, [slide], out, options)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    what = "" if tissue_mask else ", no tissue mask"
    log(
        f"  teachseg runs: {', '.join(f'{s:.1f}' for s in times)} s "
        f"(backend {info.backend}, precision {info.precision}{what})"
    )
    return statistics.median(times), statistics.median(cpu), summary


def run_monai(
    model_dir: Path, slide: Path, repeats: int, crop: int | None, fast: bool = False
) -> tuple[float, float, np.ndarray]:
    """Median seconds, CPU seconds and mask of MONAI on the level-0 image (or its central ``crop`` square).

    ``fast=False``: the model in fp32, contiguous, blending logits (MONAI's default). ``fast=True``: teachseg's
    ``Predictor`` (autocast at the precision ``auto`` resolves to, channels_last) as MONAI's predictor,
    blending probabilities as ``predict`` does.
    """
    import torch
    from monai.inferers import sliding_window_inference

    from teachseg.inference.run import load_predictor
    from teachseg.models import load_model_folder
    from teachseg.wsi.readers import open_slide

    with open_slide(slide) as reader:
        w, h = reader.dimensions
        x0, y0 = ((w - crop) // 2, (h - crop) // 2) if crop else (0, 0)
        image = reader.read(0, x0, y0, crop or w, crop or h)
    if fast:
        predictor, info = load_predictor(model_dir)
        _, meta = load_model_folder(model_dir)
        mean, std, threshold = meta.mean, meta.std, meta.threshold
        what = f"teachseg Predictor, precision {info.precision}, channels_last"
        if "bf16" not in str(info.precision):
            log(
                f"  note: teachseg's precision policy chose {info.precision} on this machine, so the "
                "'monai_bf16_channels_last' arm runs at that precision (as teachseg does)"
            )

        def network(x: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(predictor.predict_normalised(x.numpy()))[:, None]

        def to_prob(out: Any) -> Any:
            return out  # already probabilities

    else:
        model, meta = load_model_folder(model_dir)  # a fresh fp32 copy
        network, mean, std, threshold = model.eval(), meta.mean, meta.std, meta.threshold
        what = "fp32"

        def to_prob(out: Any) -> Any:
            return torch.sigmoid(out)

    x = torch.from_numpy(image).permute(2, 0, 1)[None].float().div_(255)
    del image
    x.sub_(torch.tensor(mean).view(1, 3, 1, 1)).div_(torch.tensor(std).view(1, 3, 1, 1))
    times, cpu, mask = [], [], np.zeros(0, bool)
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        with torch.inference_mode():
            out = sliding_window_inference(x, (TILE, TILE), 8, network, overlap=0.25, mode="gaussian")
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        mask = (to_prob(out)[0, 0] >= threshold).numpy()
        del out
    log(
        f"  monai runs: {', '.join(f'{s:.1f}' for s in times)} s ({what}{f', central {crop}^2 crop' if crop else ''})"
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
    """Every arm on one slide; prints throughputs, Dice and the factors of the speed-up, and returns the
    speed-up of teachseg (the backend ``auto`` picks) over MONAI fp32 (MONAI seconds / teachseg seconds)."""
    from teachseg.inference.openvino_backend import unavailable_reason

    picked = auto_backend(model_dir)
    backends = ["torch"] + (["openvino"] if unavailable_reason() is None else [])
    if picked not in backends:
        backends.append(picked)
    runs = {
        b: run_teachseg(model_dir, slide, workdir / f"out_{slide.stem}_{b}", repeats, backend=b)
        for b in backends
    }
    t_ours, cpu_ours, summary = runs[picked]
    t_torch = runs["torch"][0]
    out = workdir / f"out_{slide.stem}_{picked}"
    t_all, cpu_all, _ = run_teachseg(
        model_dir, slide, workdir / f"out_{slide.stem}_no_tissue_mask", repeats, tissue_mask=False
    )
    w, h = summary["width"], summary["height"]
    crop = crop if crop and crop < min(w, h) else None
    t_monai, cpu_monai, monai_mask = run_monai(model_dir, slide, monai_repeats, crop)
    t_fast, cpu_fast, fast_mask = run_monai(model_dir, slide, monai_repeats, crop, fast=True)
    ours = teachseg_mask(out, slide.stem, summary["threshold"])
    if crop:  # MONAI's cost is linear in pixels: scale its time from the crop to the whole slide
        x0, y0 = (w - crop) // 2, (h - crop) // 2
        ours = ours[y0 : y0 + crop, x0 : x0 + crop]
        scale = w * h / crop**2
        t_monai, cpu_monai, t_fast, cpu_fast = (v * scale for v in (t_monai, cpu_monai, t_fast, cpu_fast))
    tissue_mp = summary["tissue_area_px"] / 1e6
    log(
        f"{label}: {w}x{h}, tissue {tissue_mp:.1f} MP ({tissue_mp / (w * h / 1e6):.0%}), "
        f"tiles {summary['tiles_predicted']}/{summary['tiles_total']}, tumour {monai_mask.mean():.1%} (MONAI mask)"
    )
    extra = f", extrapolated from the {crop}^2 crop" if crop else ""
    arms = [
        ("monai_fp32", t_monai, cpu_monai, f"inference{extra}"),
        ("monai_bf16_channels_last", t_fast, cpu_fast, f"inference{extra}"),
        ("teachseg_no_tissue_mask", t_all, cpu_all, "end to end, torch backend"),
        *((f"teachseg_{b}", runs[b][0], runs[b][1], f"end to end, {b} backend") for b in backends),
        ("teachseg", t_ours, cpu_ours, f"end to end, backend {picked} (what --backend auto picks)"),
    ]
    for name, seconds, cpu_s, what in arms:
        log(
            f"{label}_{name}_tissue_mp_per_s: {tissue_mp / seconds:.3f}  ({seconds:.1f} s {what}, {cpu_s:.0f} cpu-s)"
        )
    log(f"{label}_backend: {picked}")
    on_crop = " (on the crop)" if crop else ""
    log(f"{label}_dice_teachseg_vs_monai: {dice(ours, monai_mask):.4f}{on_crop}")
    log(f"{label}_dice_teachseg_vs_monai_bf16: {dice(ours, fast_mask):.4f}{on_crop}")
    log(f"{label}_dice_monai_bf16_vs_monai_fp32: {dice(fast_mask, monai_mask):.4f}{on_crop}")
    if "openvino" in runs:
        masks = {
            b: teachseg_mask(workdir / f"out_{slide.stem}_{b}", slide.stem, summary["threshold"])
            for b in ("openvino", "torch")
        }
        log(f"{label}_dice_teachseg_openvino_vs_torch: {dice(masks['openvino'], masks['torch']):.4f}")
    log(f"{label}_speedup_from_precision_and_layout: {t_monai / t_fast:.2f}  (MONAI fp32 / MONAI bf16)")
    log(
        f"{label}_speedup_from_streaming_and_outputs: {t_fast / t_all:.2f}  "
        "(MONAI bf16 in memory / teachseg without tissue mask, end to end)"
    )
    log(
        f"{label}_speedup_from_tissue_skipping: {t_all / t_torch:.2f}  (teachseg torch without / with tissue mask)"
    )
    log(f"{label}_speedup_from_backend: {t_torch / t_ours:.2f}  (teachseg torch / teachseg {picked})")
    return t_monai / t_ours


def warm_up(model_dir: Path, workdir: Path) -> None:
    """One untimed pass of every arm on a 1024^2 slide, so that no arm's timing carries one-time costs
    (imports, OpenVINO's first inference, torch's first-call allocations): paid once per process, as in a
    cohort, and alike for every arm."""
    small = make_slide(workdir, 1024)
    with contextlib.redirect_stdout(io.StringIO()):
        compare("warm_up", model_dir, small, workdir, 1, 1, None)


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
    from teachseg.inference.options import PredictOptions
    from teachseg.inference.run import load_predictor, predict_paths

    predictor, info = load_predictor(Path(model_dir), backend="auto")  # what a user gets
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    predict_paths(predictor, info, [Path(slide)], Path(out), PredictOptions())
    peak = _vm_hwm_mb() or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_rss_mb": peak}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--quick", action="store_true", help="one MONAI run, smaller memory pair (4096^2 vs 8192^2)"
    )
    ap.add_argument(
        "--smoke",
        action="store_true",
        help="1024^2 slide, 3 training steps, no CMU slide, 512^2 vs 1024^2 memory pair: checks the script "
        "end to end; figures are meaningless",
    )
    ap.add_argument("--model", type=Path, help="model folder to use instead of training one here")
    ap.add_argument("--size", type=int, default=None, help="side of the generated slide (8192)")
    ap.add_argument("--steps", type=int, default=None, help="training steps for the benchmark model (60)")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "teachseg-bench-slide")
    ap.add_argument("--_memory-child", nargs=3, dest="memory_child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        memory_child(*args.memory_child)
        return

    if args.size is None:
        args.size = 1024 if args.smoke else 8192
    if args.steps is None:
        args.steps = 3 if args.smoke else 60
    quick = args.quick or args.smoke
    workdir = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    repeats, monai_repeats = (1, 1) if quick else (3, 3)
    crop = args.size // 2 if quick else None  # quick: MONAI on the central quarter, time scaled by area
    slide = make_slide(workdir, args.size)
    model_dir = args.model or train_model(workdir, args.steps)
    log(f"model: {model_dir}")
    warm_up(model_dir, workdir)

    speedup = compare("synthetic", model_dir, slide, workdir, repeats, monai_repeats, crop)
    if args.smoke:
        log("cmu_small: skipped (--smoke)")
    elif CMU_SMALL.is_file():
        cmu_speedup = compare("cmu_small", model_dir, CMU_SMALL, workdir, repeats, monai_repeats, None)
        log(f"cmu_small_speedup_vs_monai: {cmu_speedup:.2f}")
    else:
        log(f"cmu_small: skipped ({CMU_SMALL} not found)")

    small_side = args.size // 2 if quick else args.size
    small, large = make_slide(workdir, small_side), make_slide(workdir, small_side * 2)
    mem_small = peak_memory_mb(model_dir, small, workdir / "mem_small")
    mem_large = peak_memory_mb(model_dir, large, workdir / "mem_large")
    log(f"peak_rss_mb: {small_side}^2 {mem_small:.0f}, {2 * small_side}^2 {mem_large:.0f}")
    if args.smoke:
        log("smoke run: too small a slide and model for the figures to mean anything")
    log(f"slide_memory_ratio_4x_area: {mem_large / mem_small:.2f}")
    log(f"slide_speedup_vs_monai: {speedup:.2f}")


if __name__ == "__main__":
    main()
