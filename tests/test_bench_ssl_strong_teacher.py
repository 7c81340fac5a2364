"""``benchmarks/bench_ssl_strong_teacher.py``: the config it trains and the figures it prints, on made-up runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from benchmarks import bench_ssl_strong_teacher as bench


def _gen(run: Path, generation: int, seed: int, scores: dict[str, float], val: float) -> None:
    gen = run / f"gen{generation}"
    gen.mkdir(parents=True)
    test = sum(scores.values()) / len(scores)
    (gen / "summary.json").write_text(json.dumps({"seed": seed, "test_dice": test, "val_dice": val}))
    rows = ["id,class,dice"] + [f"{k},benign,{v}" for k, v in scores.items()]
    (gen / "test_per_image.csv").write_text("\n".join(rows) + "\n")


def _run(grid: Path, seed: int, final: int) -> Path:
    run = grid / bench.run_name(seed)
    run.mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps({"final_generation": final}))
    return run


def test_the_config_is_the_benchmarks_own_run_with_the_long_supervised_model_as_teacher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "ledger" / "ssl" / bench.run_name(42)
    source.mkdir(parents=True)
    original = {
        "name": bench.run_name(42),
        "output_dir": "/elsewhere",
        "seed": 42,
        "data": {"root": "/old/busi", "label_fraction": 0.25, "image_size": 128},
        "train": {"epochs": 40},
        "selftrain": {"teacher_model": None, "max_generations": 3, "pseudo_weight": 1.0},
        "experiment": {"seeds": [42]},
    }
    (source / "config.yaml").write_text(yaml.safe_dump(original))
    monkeypatch.setattr(bench, "BENCH", tmp_path / "ledger")
    raw = bench.run_config(42, Path("/m/model"), tmp_path / "out", Path("/data/busi"), 1)
    assert raw["selftrain"] == {"teacher_model": "/m/model", "max_generations": 1, "pseudo_weight": 1.0}
    assert raw["data"] == {"root": "/data/busi", "label_fraction": 0.25, "image_size": 128}
    assert raw["output_dir"] == str(tmp_path / "out") and "experiment" not in raw
    # everything that decides the split and the training is the benchmark run's own
    # (a ledger config without train.stop trained fixed epochs: the Students must too, not converge)
    assert raw["seed"] == 42 and raw["train"] == {"epochs": 40, "stop": "epochs"}
    with pytest.raises(SystemExit):
        bench.run_config(84, Path("/m"), tmp_path, Path("/d"), 1)


def test_report_prints_each_seed_the_loops_decision_and_the_paired_differences(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # seed 21: the Student beats its Teacher and is kept; seed 42: it loses and the Teacher stays final
    r21 = _run(tmp_path, 21, final=1)
    _gen(r21, 0, 21, {"a": 0.6, "b": 0.6}, 0.65)
    _gen(r21, 1, 21, {"a": 0.7, "b": 0.6}, 0.70)
    r42 = _run(tmp_path, 42, final=0)
    _gen(r42, 0, 42, {"c": 0.5, "d": 0.5}, 0.68)
    _gen(r42, 1, 42, {"c": 0.6, "d": 0.6}, 0.60)
    assert bench.report(tmp_path) == 0
    out = capsys.readouterr().out
    assert "seed 21: Teacher test 0.600 (val 0.650), Student test 0.650 (val 0.700, kept), final gen1" in out
    assert (
        "seed 42: Teacher test 0.500 (val 0.680), Student test 0.600 (val 0.600, dropped), final gen0" in out
    )
    lines = {ln.split(":")[0]: ln for ln in out.splitlines() if ln.startswith(("student_", "final_"))}
    # Student - Teacher: a +0.1, b 0, c +0.1, d +0.1 -> 0.075; final - Teacher: a +0.1, the rest 0 -> 0.025
    assert lines["student_minus_teacher"].startswith("student_minus_teacher: 0.075 [")
    assert lines["final_minus_steps_control_at_quarter"].startswith(
        "final_minus_steps_control_at_quarter: 0.025 ["
    )
    assert out.rstrip().splitlines()[-1].startswith("final_minus_steps_control_at_quarter")


def test_a_missing_teacher_model_names_its_path_and_how_to_make_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "busi"
    data.mkdir()
    with pytest.raises(SystemExit) as exc:
        bench.main(
            ["--teachers", str(tmp_path / "nothing"), "--seeds", "21", "--data", str(data), "--no-ledger"]
        )
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "nothing" / "fixmatch_l0.25_linknet_seed21" / "gen0" / "model") in err
    assert "bench_ssl_busi.py --sweep --control --fractions 0.25 --seeds 21" in err


def test_an_empty_grid_is_an_error_not_an_empty_table(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        bench.report(tmp_path)
