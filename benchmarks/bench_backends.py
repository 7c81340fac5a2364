"""Inference throughput of each backend on batches of 8 x 256^2 tiles (LinkNet-ResNet34), in megapixels/s.

Arms, all through teachseg's ``Predictor`` on normalised input (``predict_normalised``: the model call and
the sigmoid, no reading or blending): torch fp32 + channels_last, torch at the precision ``auto`` resolves
to (when it is not fp32), onnxruntime fp32, and OpenVINO at the precision ``auto`` gives it (bf16 where the
CPU has it natively, else fp32). Each prints its median MP/s over the repeats and its largest probability
difference to torch fp32 on the same batch (a random-weight model unless ``--model``; the input is a real
region of CMU-1-Small-Region.svs when present, else a synthetic slide's). Last line:
``openvino_speedup_vs_torch: X.XX`` (OpenVINO / torch fp32 + channels_last).

    python benchmarks/bench_backends.py            # 10 timed batches per arm after 2 warm-ups
    python benchmarks/bench_backends.py --smoke    # 1 batch per arm: checks the script
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CMU_SMALL = ROOT / ".." / "shared" / "data" / "wsi" / "CMU-1-Small-Region.svs"
BATCH, TILE = 8, 256


def tiles() -> np.ndarray:
    """(8, 256, 256, 3) uint8: a 1024x512 real region cut into tiles, or a synthetic slide's."""
    if CMU_SMALL.is_file():
        import openslide

        region = np.asarray(openslide.OpenSlide(str(CMU_SMALL)).read_region((400, 600), 0, (1024, 512)))
        region = region[..., :3]
    else:
        from teachseg.data.synth_slide import SyntheticTissue

        region = SyntheticTissue(1024, 1024, tissue_fraction=0.9, seed=0).render(1, 0, 0, 512, 1024)
    return np.stack([region[y : y + TILE, x : x + TILE] for y in (0, TILE) for x in range(0, 1024, TILE)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--model", type=Path, help="model folder (default: a randomly initialised LinkNet-ResNet34)"
    )
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--smoke", action="store_true", help="one timed batch per arm")
    args = ap.parse_args()
    import torch

    from teachseg.inference.backends import build_predictor
    from teachseg.inference.openvino_backend import unavailable_reason
    from teachseg.models import IMAGENET_MEAN, IMAGENET_STD, build_model, load_model_folder
    from teachseg.precision import resolve

    if args.model:
        model, meta = load_model_folder(args.model)
        mean, std = meta.mean, meta.std
    else:
        torch.manual_seed(0)
        model, mean, std = build_model("linknet", "resnet34").eval(), IMAGENET_MEAN, IMAGENET_STD
    repeats, warmup = (1, 1) if args.smoke else (args.repeats, 2)
    auto = resolve("auto", "cpu")
    print(f"torch threads {torch.get_num_threads()}, precision auto on this CPU: {auto}", flush=True)
    arms = [("torch_fp32_channels_last", "torch", "fp32")]
    if str(auto) != "fp32":
        arms.append((f"torch_{auto}_channels_last", "torch", "auto"))
    arms.append(("onnxruntime_fp32", "onnx", "fp32"))
    if unavailable_reason() is None:
        arms.append(("openvino", "openvino", "auto"))
    else:
        print(f"openvino: skipped ({unavailable_reason()})")
    batch = tiles()
    reference: np.ndarray | None = None
    rates: dict[str, float] = {}
    for name, backend, precision in arms:
        predictor = build_predictor(model, mean, std, backend=backend, device="cpu", precision=precision)
        x = predictor.normalise(batch)
        for _ in range(warmup):
            probs = predictor.predict_normalised(x)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            probs = predictor.predict_normalised(x)
            times.append(time.perf_counter() - t)
        reference = probs if reference is None else reference
        rates[name] = BATCH * TILE * TILE / 1e6 / statistics.median(times)
        diff = float(np.abs(probs - reference).max())
        print(
            f"{name}_mp_per_s: {rates[name]:.3f}  (precision {predictor.precision}, "
            f"max abs probability difference to torch fp32 {diff:.5f})",
            flush=True,
        )
    if "openvino" in rates:
        print(f"openvino_speedup_vs_torch: {rates['openvino'] / rates['torch_fp32_channels_last']:.2f}")


if __name__ == "__main__":
    main()
