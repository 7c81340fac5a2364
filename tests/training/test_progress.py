"""What a fit tells its reporter: its phase, 1-based epochs as metrics.csv has them, its evaluation, reuse."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from teachseg.training.progress import Reporter, as_reporter, epoch_line


class Recorder(Reporter):
    """Keeps every call, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[Any, ...]] = []

    def epoch(self, phase: str, row: Any, epochs: int) -> None:
        self.events.append(("epoch", phase, int(row["epoch"]), epochs, round(row["val_dice"], 6)))

    def start(self, phase: str, total: int, unit: str = "epoch", done: int = 0) -> None:
        self.events.append(("start", phase, total, unit, done))

    def update(self, completed: float, detail: str = "") -> None:
        self.events.append(("update", completed, detail))

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
