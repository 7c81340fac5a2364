"""The online methods (mean_teacher, fixmatch) under two-process DDP on the CPU (gloo), through the console
script: one run folder, one model, statistics recorded once, the network and its EMA (parameters and
batch-norm statistics) the same on both ranks, and the unlabelled stream sharded across them.

A test-only ``sitecustomize`` (``ddp_probe/``, put on the children's PYTHONPATH) records what each rank did.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
import segmentation_models_pytorch as smp
import torch

from teachseg.io import read_json
from tests.conftest import run_ddp_cpu

PROBE = Path(__file__).parent / "ddp_probe"


def _unlabelled_seen(probe: Path, rank: int) -> dict[int, list[int]]:
    """Epoch -> the unlabelled indices that rank's sampler handed out."""
    seen: dict[int, list[int]] = {}
    for line in (probe / f"unlabelled_rank{rank}.jsonl").read_text().splitlines():
        row = json.loads(line)
        seen[row["epoch"]] = row["indices"]
    return seen


@pytest.mark.slow
@pytest.mark.parametrize(
    ("method", "online"),
    [
        ("mean_teacher", {}),
        ("fixmatch", {"teacher": "ema", "evaluate": "ema", "confidence": 0.6}),
    ],
)
def test_online_method_ddp_two_cpu_processes(
    synth_data: Path, write_config, tmp_path: Path, method: str, online: dict
) -> None:
    # label_fraction 0.5 keeps 6 of the 12 training masks: batch 3 gives one process 2 steps an epoch, and
    # each of two ranks 1 (3 images); the 6 withheld + 4 unlabelled images feed the unlabelled stream.
    cfg = write_config(
        synth_data,
        name="ddp.yaml",
        data={"label_fraction": 0.5, "batch_size": 3},
        train={"epochs": 2},
        selftrain={"method": method, "online": {"rampup_epochs": 0, **online}},
    )
    probe = tmp_path / "probe"
    probe.mkdir()
    proc = run_ddp_cpu(
        "selftrain",
        cfg,
        29600 + os.getpid() % 1000 + (method == "fixmatch"),
        f"name={method}",
        env={
            "PYTHONPATH": os.pathsep.join([str(PROBE), *filter(None, [os.environ.get("PYTHONPATH")])]),
            "TEACHSEG_DDP_PROBE": str(probe),
        },
        timeout=540,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    runs = tmp_path / "runs"
    assert [p.name for p in runs.iterdir()] == [method]
    run_dir = runs / method
    assert sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("summary.json")) == [
        "gen0/summary.json",
        "summary.json",
    ]
    assert len(list(run_dir.rglob("lineage.json"))) == 1
    assert len(list(run_dir.rglob("model.safetensors"))) == 1
    assert not [p for p in run_dir.rglob("*") if ".tmp" in p.name]
    summary = read_json(run_dir / "summary.json")
    assert summary["method"] == method and summary["n_labelled"] == 6 and summary["n_unlabelled"] == 10

    # per-epoch statistics: one row per epoch (rank 0 writes), in metrics.csv and the lineage alike
    with open(run_dir / "gen0" / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    lineage = read_json(run_dir / "lineage.json")
    assert len(lineage["generations"]) == 1
    pseudo = lineage["generations"][0]["pseudo"]
    assert pseudo["confident_share_per_epoch"] == [round(float(r["unl_confident"]), 6) for r in rows]
    assert all(0.0 <= s <= 1.0 for s in pseudo["confident_share_per_epoch"])
    # the final model scored once against the 6 withheld masks
    assert pseudo["n_withheld"] == 6 and 0.0 <= pseudo["dice_vs_withheld_masks"] <= 1.0

    # each rank took half of the labelled batches: 1 step an epoch (one process takes 2), one EMA update each
    ckpt = torch.load(run_dir / "gen0" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 2
    assert int(ckpt["state_dict"]["ema.n_averaged"]) == 2

    # the two ranks end with the same network, the EMA included: every parameter and every buffer (batch-norm
    # statistics, which each rank's forward passes update from its own shard; DDP copies rank 0's to every rank
    # at the start of each forward, validation's included, so every rank validates and ends with what rank 0
    # exports)
    ranks = [torch.load(probe / f"state_rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert ranks[0].keys() == ranks[1].keys()
    net = smp.create_model("linknet", "resnet18", encoder_weights=None)
    buffers = [n for n, _ in net.named_buffers()]
    assert any(n.endswith("running_var") for n in buffers)
    for prefix in ("model.", "ema.module."):
        assert {f"{prefix}{n}" for n in net.state_dict()} <= ranks[0].keys(), prefix
    for key in ranks[0]:
        assert torch.equal(ranks[0][key], ranks[1][key]), key
    # per-epoch statistics are all-reduced: the ranks saw different images, yet record the same values
    histories = [json.loads((probe / f"history_rank{r}.json").read_text()) for r in (0, 1)]
    assert histories[0] == histories[1] and len(histories[0]) == 2
    assert [round(h["unl_loss"], 6) for h in histories[0]] == [round(float(r["unl_loss"]), 6) for r in rows]
    # the epoch lines, the header and the summary table are printed once, by rank 0 only
    printed = proc.stdout + proc.stderr
    assert printed.count("epoch   1/2") == 1 and printed.count("epoch   2/2") == 1
    assert printed.count(f"{method}: training") == 1 and printed.count("trains once") == 1
    # and the exported model is the EMA of the best epoch (here the checkpoint's EMA)
    exported = smp.from_pretrained(str(run_dir / "gen0" / "model")).state_dict()
    best = torch.load(run_dir / "gen0" / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    for name, value in exported.items():
        assert torch.equal(value, best["state_dict"][f"ema.module.{name}"]), name

    # the unlabelled stream is sharded: each epoch the ranks draw different images
    seen = [_unlabelled_seen(probe, r) for r in (0, 1)]
    assert seen[0].keys() == seen[1].keys() == {0, 1}
    for epoch in (0, 1):
        assert len(seen[0][epoch]) == len(seen[1][epoch]) == 3
        assert not set(seen[0][epoch]) & set(seen[1][epoch])
    assert seen[0][0] != seen[0][1]  # reshuffled every epoch
