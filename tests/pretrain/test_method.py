"""Using pretraining in runs: the ``pretrain`` weights name made once and reused across label fractions,
``selftrain.method: pretrain`` end to end, a pretrained Teacher and Student, and config identity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from teachseg.config import Config, build_config
from teachseg.errors import ConfigError
from teachseg.pretrain import method as pretrain_method
from teachseg.pretrain.method import needs_split_check, resolve_encoder_weights
from teachseg.pretrain.record import PretrainRecord
from teachseg.runfiles import Lineage, TrainSummary
from teachseg.selftrain.experiment import plan
from teachseg.selftrain.methods import run_method
from teachseg.training.identity import config_drift, record_config
from tests.pretrain.conftest import make_config, prepared


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One output folder for the module: its pretraining cache serves every test below."""
    return tmp_path_factory.mktemp("method_runs")


def test_pretrain_name_is_made_once_and_reused_at_every_label_fraction(
    synth_data: Path, runs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[Path] = []
    real = pretrain_method.ensure_pretrained

    def counting(cfg: Config, data: Any, encoder: str, **kw: Any) -> Path:
        from teachseg.pretrain.run import finished

        folder = real(cfg, data, encoder, **kw)
        made.append(folder)
        assert finished(folder) is not None
        return folder

    monkeypatch.setattr(pretrain_method, "ensure_pretrained", counting)
    stamps = []
    for fraction in (1.0, 0.5, 0.25):
        cfg = make_config(
            synth_data, runs, model={"encoder_weights": "pretrain"}, data={"label_fraction": fraction}
        )
        assert needs_split_check(cfg)
        resolved = resolve_encoder_weights(cfg, prepared(cfg))
        weights = Path(str(resolved.model.encoder_weights))
        assert weights.name == "encoder.safetensors" and weights.parent.parent == runs / "pretrain"
        assert cfg.model.encoder_weights == "pretrain"  # the recorded config keeps the name
        stamps.append(weights.stat().st_mtime_ns)
    assert len(set(made)) == 1 and len(set(stamps)) == 1  # one pretraining, written once
    assert len(list((runs / "pretrain").iterdir())) == 1


def test_method_pretrain_refuses_other_weights(synth_data: Path, runs: Path) -> None:
    cfg = make_config(
        synth_data, runs, selftrain={"method": "pretrain"}, model={"encoder_weights": "imagenet"}
    )
    with pytest.raises(ConfigError, match="method pretrain fine-tunes.*'imagenet'.*method supervised"):
        resolve_encoder_weights(cfg, prepared(cfg))


def test_method_pretrain_fine_tunes_and_records_its_pretraining(synth_data: Path, runs: Path) -> None:
    cfg = make_config(synth_data, runs, name="pt", selftrain={"method": "pretrain"})
    run_dir = runs / "pt"
    run_dir.mkdir()
    record_config(run_dir, cfg)
    summary = run_method(cfg, run_dir)
    assert summary["method"] == "pretrain"
    gen0 = TrainSummary.read(run_dir / "gen0" / "summary.json")
    assert gen0.method == "pretrain"
    weights = Path(str(gen0.encoder_weights))
    record = PretrainRecord.read(weights.with_name("pretrain.json"))
    info = gen0.pretrain  # type: ignore[attr-defined]
    assert info["record"] == str(weights.with_name("pretrain.json"))
    assert info["identity"] == record.identity and info["seconds"] == record.seconds
    assert info["device_kind"] == "cpu" and len(info["record_sha256"]) == 64
    lineage = Lineage.read(run_dir / "lineage.json")
    assert (
        lineage.generations[0].role == "pretrain"
        and lineage.generations[0].pretrain["identity"] == record.identity
    )  # type: ignore[attr-defined]
    assert "encoder_weights: null" in (run_dir / "config.yaml").read_text()  # the config as the user wrote it


def test_method_pretrain_scores_its_model_on_the_selection_images(synth_data: Path, runs: Path) -> None:
    """The arm is chosen between methods on the selection images: its final model must be scored there."""
    cfg = make_config(
        synth_data, runs, name="pt-select", data={"select_fraction": 0.2}, selftrain={"method": "pretrain"}
    )
    run_dir = runs / "pt-select"
    run_dir.mkdir()
    record_config(run_dir, cfg)
    run_method(cfg, run_dir)
    gen0 = TrainSummary.read(run_dir / "gen0" / "summary.json")
    assert gen0.select_dice is not None  # type: ignore[attr-defined]
    assert (run_dir / "gen0" / "select_per_image.csv").is_file()


def test_a_pretrained_teacher_and_its_students(synth_data: Path, runs: Path) -> None:
    cfg = make_config(
        synth_data,
        runs,
        name="ts",
        model={"encoder_weights": "pretrain"},
        selftrain={"method": "teacher_student", "max_generations": 1, "tta": False},
    )
    run_dir = runs / "ts"
    run_dir.mkdir()
    record_config(run_dir, cfg)
    run_method(cfg, run_dir)
    teacher = TrainSummary.read(run_dir / "gen0" / "summary.json")
    student = TrainSummary.read(run_dir / "gen1" / "summary.json")
    assert teacher.pretrain["identity"] == student.pretrain["identity"]  # type: ignore[attr-defined]
    assert teacher.encoder_weights == student.encoder_weights
    assert Path(str(teacher.encoder_weights)).parent.parent == runs / "pretrain"


def _cfg(method: str, **extra: Any) -> Config:
    return build_config({"data": {"root": "/data"}, "selftrain": {"method": method}, **extra}, "x")


def test_pretrain_settings_are_inert_for_runs_that_do_not_pretrain(tmp_path: Path) -> None:
    changed = {"pretrain": {"epochs": 7, "objective": "simclr"}}
    for method in ("supervised", "fixmatch", "teacher_student"):
        run_dir = tmp_path / method
        run_dir.mkdir()
        record_config(run_dir, _cfg(method))
        assert config_drift(run_dir, _cfg(method, **changed)) == []
    for cfg in (_cfg("pretrain"), _cfg("teacher_student", model={"encoder_weights": "pretrain"})):
        run_dir = tmp_path / f"p{len(list(tmp_path.iterdir()))}"
        run_dir.mkdir()
        record_config(run_dir, cfg)
        data = cfg.to_dict()
        data["pretrain"]["epochs"] = 7
        assert config_drift(run_dir, Config.model_validate(data)) == [("pretrain.epochs", 100, 7)]
    loop = tmp_path / "loop"
    loop.mkdir()
    record_config(loop, _cfg("pretrain"))
    assert config_drift(loop, _cfg("pretrain", selftrain={"method": "pretrain", "max_generations": 9})) == []


def test_experiment_runs_pretrain_at_every_label_fraction() -> None:
    cfg = build_config(
        {
            "experiment": {
                "archs": ["linknet"],
                "seeds": [1],
                "methods": ["supervised", "pretrain", "fixmatch"],
            },
        },
        "x",
    )
    cfg.experiment.label_fractions = [0.5, 1.0]
    runs = {(r["method"], r["label_fraction"]) for r in plan(cfg, has_own_unlabelled=False)}
    assert runs == {
        ("supervised", 0.5),
        ("pretrain", 0.5),
        ("fixmatch", 0.5),
        ("supervised", 1.0),
        ("pretrain", 1.0),
    }
