"""bench_suggest_busi.py's own logic, without training: the config it trains with, reuse and the ledger,
the validation choice and the paired gain."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from benchmarks import bench_suggest_busi as bench


def _run(folder: Path, key: str, val: dict[str, float], test: dict[str, float]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench.json").write_text(json.dumps({"key": key, "chosen": []}))
    (folder / "summary.json").write_text(json.dumps({"best_epoch": 3, "epochs": 10}))
    for split, scores in (("val", val), ("test", test)):
        rows = ["id,dice"] + [f"{i},{d}" for i, d in scores.items()]
        (folder / f"{split}_per_image.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_the_config_asks_for_convergence_when_teachseg_has_it(tmp_path, monkeypatch):
    args = argparse.Namespace(out=tmp_path, batch_size=4)
    assert bench.base_config(args, tmp_path, 128, None)["train"]["stop"] == "converge"
    fixed = bench.base_config(args, tmp_path, 128, 40)["train"]
    assert fixed["epochs"] == 40 and "stop" not in fixed
    assert bench.base_config(args, tmp_path, 128, 40)["data"]["label_fraction"] == pytest.approx(1 / 16)


def test_a_finished_run_is_reused_only_with_its_key_and_comes_back_from_the_ledger(tmp_path):
    run = _run(tmp_path / "out" / "seed21" / "random", "k1", {"a": 0.5}, {"b": 0.4})
    assert bench.finished(run, "k1") and not bench.finished(run, "k2")
    ledger = tmp_path / "ledger"
    bench.record(ledger, run)
    kept = ledger / "seed21" / "random"
    assert (kept / "provenance.json").is_file() and (kept / "test_per_image.csv").is_file()
    fresh = tmp_path / "elsewhere" / "seed21" / "random"
    assert bench.restore(ledger, fresh, "k1") and bench.per_image(fresh, "test") == {"b": 0.4}
    assert not bench.restore(ledger, tmp_path / "other" / "seed21" / "random", "k2")


def test_settings_are_chosen_on_validation_and_the_gain_is_paired_over_test_images(tmp_path):
    folders = {}
    for seed, shift in ((21, 0.0), (42, 0.1)):
        base = tmp_path / f"seed{seed}"
        folders[seed] = {
            # the better on validation is the worse on test: the choice must not look at test
            "suggest-a0.5-d1": _run(base / "s1", "k", {"v": 0.6}, {"t1": 0.2 + shift, "t2": 0.2}),
            "suggest-a1-d1": _run(base / "s2", "k", {"v": 0.5}, {"t1": 0.9, "t2": 0.9}),
            "random": _run(base / "r", "k", {"v": 0.5}, {"t1": 0.1, "t2": 0.1 + shift}),
        }
    assert bench.chosen_on_validation(folders, "suggest-") == "suggest-a0.5-d1"
    gain, lo, hi, n = bench.paired(folders, "suggest-a0.5-d1", "random")
    # image t1: (0.1 + 0.2) / 2 = 0.15 over the seeds; image t2: (0.1 + 0.0) / 2 = 0.05
    assert n == 2 and gain == pytest.approx(0.1)
    assert lo <= gain <= hi


def test_a_killed_round_zero_of_the_same_config_is_resumed_not_deleted(tmp_path):
    from benchmarks.bench_suggest_busi import same_config

    from teachseg.config import Config
    from teachseg.training.prepare import write_config

    cfg = Config()
    assert not same_config(tmp_path, cfg)  # nothing there yet
    write_config(tmp_path, cfg)
    assert same_config(tmp_path, cfg)
    other = Config.model_validate({"seed": cfg.seed + 1})
    assert not same_config(tmp_path, other)
