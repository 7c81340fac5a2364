"""What a fit tells its reporter: its phase, 1-based epochs as metrics.csv has them, its evaluation, reuse;
a converging fit: no length, where its stopping rule stands, and why it stopped."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from teachseg.training.progress import Converging, Reporter, as_reporter, epoch_line, stop_line


class Recorder(Reporter):
    """Keeps every call, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[Any, ...]] = []

    def epoch(self, phase: str, row: Any, epochs: int | None) -> None:
        self.events.append(("epoch", phase, int(row["epoch"]), epochs, round(row["val_dice"], 6)))

    def start(self, phase: str, total: int | None, unit: str = "epoch", done: int = 0) -> None:
        self.events.append(("start", phase, total, unit, done))

    def update(self, completed: float, detail: str = "") -> None:
        self.events.append(("update", completed, detail))

    def converging(self, state: Converging) -> None:
        self.events.append(("converging", state))

    def stopped(self, phase: str, summary: Any) -> None:
        self.events.append(("stopped", phase, stop_line(phase, summary)))

    def finish(self) -> None:
        self.events.append(("finish",))

    def skip_epochs(self, n: int) -> None:
        self.events.append(("skip", n))

    def stage(self, text: str, level: int = 0) -> None:
        self.events.append(("stage", text, level))


def test_plain_reporter_prints_the_log_line() -> None:
    printed: list[str] = []

    class Console:
        def print(self, text: str, **_: Any) -> None:
            printed.append(text)

    reporter = as_reporter(Console())
    reporter.epoch(
        "gen0 Teacher", {"epoch": 1, "train_loss": 1, "val_loss": 2, "val_dice": 0.5, "val_jaccard": 0.25}, 2
    )
    reporter.start("gen0 Teacher", 2)  # draws nothing
    assert printed == ["epoch   1/2  train_loss 1.0000  val_loss 2.0000  val_dice 0.5000  val_jaccard 0.2500"]
    converging = {
        "epoch": 12,
        "step": 72,
        "train_loss": 1,
        "val_loss": 2,
        "val_dice": 0.5,
        "val_jaccard": 0.25,
    }
    reporter.epoch("gen0 Teacher", converging, None)  # a converging fit: its step, no total
    assert printed[-1] == (
        "epoch  12  step   72  train_loss 1.0000  val_loss 2.0000  val_dice 0.5000  val_jaccard 0.2500"
    )
    assert as_reporter(reporter) is reporter
    assert epoch_line({"epoch": 10, "train_loss": 0, "val_loss": 0, "val_dice": 0, "val_jaccard": 0}, 200)[
        :13
    ] == ("epoch  10/200")


def test_a_fit_reports_its_phases(tmp_path: Path, synth_data: Path, write_config) -> None:
    from teachseg.config import load_config
    from teachseg.training.fit import train_model
    from teachseg.training.prepare import prepare_data
    from teachseg.training.spec import ModelSpec

    cfg = load_config(write_config(synth_data, train={"epochs": 2}))
    run_dir = tmp_path / "gen0"
    data = prepare_data(cfg, run_dir)
    rec = Recorder()
    spec = ModelSpec.teacher(cfg)
    train_model(cfg, run_dir, data.train, data.val, data.test, spec=spec, console=rec, phase="gen0 Teacher")
    events = rec.events

    assert events[0] == ("start", "gen0 Teacher", 2, "epoch", 0)
    with open(run_dir / "metrics.csv", encoding="utf-8", newline="") as fh:
        rows = [(int(r["epoch"]), round(float(r["val_dice"]), 6)) for r in csv.DictReader(fh)]
    epochs = [(e[2], e[4]) for e in events if e[0] == "epoch"]
    assert epochs == rows == [(1, rows[0][1]), (2, rows[1][1])]  # 1-based, as metrics.csv
    assert all(e[1] == "gen0 Teacher" and e[3] == 2 for e in events if e[0] == "epoch")

    fit_end = events.index(("finish",))
    updates = [e for e in events[:fit_end] if e[0] == "update"]
    done = [u[1] for u in updates]
    assert done == sorted(done) and 0 < done[0] < 1 and done[-1] == 2  # batches, then whole epochs
    assert updates[0][2] == "epoch 1/2 · 1/3" and "epoch 2/2 · validation" in [u[2] for u in updates]

    n_eval = len(data.val) + len(data.test)
    assert events[fit_end + 1] == ("start", "gen0 evaluation", n_eval, "image", 0)
    assert events[-2] == ("update", n_eval, f"{n_eval}/{n_eval} images") and events[-1] == ("finish",)

    again = Recorder()  # a finished fit, resumed: its epochs are not this command's work
    train_model(cfg, run_dir, data.train, data.val, data.test, spec=spec, console=again, resume=True)
    assert again.events == [("skip", 2)]


def _converging_config(write_config, synth_data: Path, **converge: Any):
    from teachseg.config import load_config

    # validation every epoch (3 steps); a gain needs +1 Dice, so only the first validation gains: the fit
    # stops after 1 + patience evaluations, whatever the scores
    rule = {"eval_every_steps": 1, "patience": 2, "min_delta": 1.0, "max_steps": 300, **converge}
    return load_config(write_config(synth_data, train={"stop": "converge", "converge": rule}))


def test_a_converging_fit_reports_its_stopping_rule(tmp_path: Path, synth_data: Path, write_config) -> None:
    from teachseg.io import read_json
    from teachseg.training.fit import train_model
    from teachseg.training.prepare import prepare_data
    from teachseg.training.spec import ModelSpec

    cfg = _converging_config(write_config, synth_data)
    run_dir = tmp_path / "gen0"
    data = prepare_data(cfg, run_dir)
    rec = Recorder()
    spec = ModelSpec.teacher(cfg)
    train_model(cfg, run_dir, data.train, data.val, data.test, spec=spec, console=rec, phase="gen0 Teacher")
    events = rec.events
    summary = read_json(run_dir / "summary.json")
    assert summary["stop"]["stopped_by"] == "patience" and summary["epochs"] == 3

    assert events[0] == ("start", "gen0 Teacher", None, "epoch", 0)  # no length: not the cap's 100 epochs
    fit_end = events.index(("finish",))
    assert not [e for e in events[:fit_end] if e[0] == "update"]  # no share of a made-up total
    with open(run_dir / "metrics.csv", encoding="utf-8", newline="") as fh:
        rows = [(int(r["epoch"]), round(float(r["val_dice"]), 6)) for r in csv.DictReader(fh)]
    epochs = [(e[2], e[4]) for e in events if e[0] == "epoch"]
    assert epochs == rows and [e for e, _ in rows] == [1, 2, 3]
    assert all(e[3] is None for e in events if e[0] == "epoch")  # no epoch total on any line

    states = [e[1] for e in events[:fit_end] if e[0] == "converging"]
    assert all(s.patience == 2 for s in states)
    training = [(s.epoch, s.step, s.wait, s.best_epoch) for s in states if not s.validating]
    # every batch (3 an epoch) with its step; the rule's state as it stood after the last validation
    assert training == [
        (1, 1, 0, None),
        (1, 2, 0, None),
        (1, 3, 0, None),
        (2, 4, 0, 1),
        (2, 5, 0, 1),
        (2, 6, 0, 1),
        (3, 7, 1, 1),
        (3, 8, 1, 1),
        (3, 9, 1, 1),
    ]
    assert [(s.epoch, s.wait) for s in states if s.validating] == [(1, 0), (2, 0), (3, 1)]
    first_dice = rows[0][1]
    assert all(round(s.best, 6) == first_dice for s in states if s.best is not None)  # the rule's best

    stops = [e for e in events if e[0] == "stopped"]
    best = f"best epoch {summary['best_epoch']} (step {summary['best_step']})"
    assert stops == [
        (
            "stopped",
            "gen0 Teacher",
            f"gen0 Teacher stopped at epoch 3 (step 9): no gain of 1 in 2 evaluations; {best}, "
            f"val Dice {summary['val_dice']:.4f}",
        )
    ]
    assert events.index(stops[0]) == fit_end + 1  # before the evaluation phase
    assert events[fit_end + 2][:3] == ("start", "gen0 evaluation", len(data.val) + len(data.test))

    again = Recorder()  # a finished converging fit, resumed: no epochs of a plan to give back
    train_model(cfg, run_dir, data.train, data.val, data.test, spec=spec, console=again, resume=True)
    assert again.events == [("skip", None)]


def test_the_rules_best_epoch_is_the_first_that_scored_it() -> None:
    from types import SimpleNamespace

    import torch

    from teachseg.training.convergence import ConvergenceStop
    from teachseg.training.fit import EpochRecorder

    stopper = ConvergenceStop(patience=5, min_delta=0.01, eval_every_steps=1, max_steps=100)
    dice = [0.30, 0.52, 0.525, 0.52]  # epoch 3 gains less than min_delta; epoch 4 ties the best
    history = [{"epoch": e, "val_dice": float(torch.tensor(d))} for e, d in enumerate(dice, 1)]
    stopper.best_score, stopper.wait_count = torch.tensor(dice[1]), 2
    rec = Recorder()
    recorder = EpochRecorder(Path("unused.csv"), 8, rec, "gen1 Student", stopper)
    trainer = SimpleNamespace(current_epoch=4, global_step=15)
    recorder._report_convergence(trainer, SimpleNamespace(history=history), validating=False)  # type: ignore[arg-type]
    assert rec.events == [("converging", Converging(5, 15, 2, 5, float(torch.tensor(0.52)), 2))]
