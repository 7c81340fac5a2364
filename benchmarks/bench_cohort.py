"""Cohort throughput: one process (one torch thread) against a local 2-worker Ray cluster (one thread each).

Eight generated slides are predicted end to end (read, tissue, LinkNet-ResNet18 tiles, blending, TIFF,
GeoJSON, overlay) by ``predict_paths`` and by ``predict_paths_ray`` with ``--ray local``-style settings
(``num_cpus=2``, one CPU per slide task). Each arm first predicts a warm-up cohort (the Ray workers start and
import torch then), not timed. Prints seconds and slides/s per arm, then, last,
``cohort_parallel_efficiency`` = (slides/s with 2 workers) / (2 x slides/s of one process).

    python benchmarks/bench_cohort.py            # 8 slides of 1024^2 px
    python benchmarks/bench_cohort.py --smoke    # 4 slides of 512^2 px: checks the script runs
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import OUTPUT  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slides", type=int, default=8)
    ap.add_argument("--size", type=int, default=1024, help="slide side in pixels (level 0, 0.5 um/px)")
    ap.add_argument("--smoke", action="store_true", help="4 slides of 512 px: checks the script runs")
    args = ap.parse_args()
    if args.smoke:
        args.slides, args.size = 4, 512

    import ray
    import torch

    from teachseg.data.synth_slide import synthetic_slide
    from teachseg.inference.cluster import ModelFolderPredictor, RaySettings, predict_paths_ray
    from teachseg.inference.options import PredictOptions
    from teachseg.inference.run import load_predictor, predict_paths
    from teachseg.models import ModelMeta, build_model, save_model_folder

    torch.set_num_threads(1)
    root = OUTPUT / "cohort"
    shutil.rmtree(root, ignore_errors=True)
    torch.manual_seed(0)
    model_dir = root / "model"
    save_model_folder(
        build_model("linknet", "resnet18"), model_dir, ModelMeta("linknet", "resnet18", 128, mpp=0.5)
    )
    slides, warm = root / "slides", root / "warm"
    slides.mkdir(parents=True)
    warm.mkdir()
    for i in range(args.slides):
        synthetic_slide(slides / f"s{i}.tif", args.size, tissue_fraction=0.5, mpp=0.5, seed=i, tile=256)
    for i in range(2):
        synthetic_slide(warm / f"w{i}.tif", 512, tissue_fraction=0.5, mpp=0.5, seed=100 + i, tile=256)
    opts = PredictOptions()
    make = ModelFolderPredictor(model_dir, device="cpu", precision="fp32")
    predictor, info = load_predictor(model_dir, device="cpu", precision="fp32")

    predict_paths(predictor, info, [warm], root / "out-warm-single", opts)
    start = time.perf_counter()
    predict_paths(predictor, info, [slides], root / "out-single", opts)
    single = time.perf_counter() - start

    ray.init(address="local", num_cpus=2, include_dashboard=False)
    try:
        settings = RaySettings(cpus_per_task=1)
        predict_paths_ray(make, info, [warm], root / "out-warm-ray", opts, settings)
        start = time.perf_counter()
        predict_paths_ray(make, info, [slides], root / "out-ray", opts, settings)
        clustered = time.perf_counter() - start
    finally:
        ray.shutdown()

    n = args.slides
    for arm, seconds in (("single process, 1 thread", single), ("Ray, 2 workers x 1 thread", clustered)):
        print(f"{arm}: {seconds:.1f} s, {n / seconds:.3f} slides/s")
    same = all(
        (root / "out-single" / f"s{i}_prob.tif").read_bytes()
        == (root / "out-ray" / f"s{i}_prob.tif").read_bytes()
        for i in range(n)
    )
    print(f"probability TIFFs identical: {same}")
    print(f"cohort_parallel_efficiency: {(n / clustered) / (2 * n / single):.2f}")


if __name__ == "__main__":
    main()
