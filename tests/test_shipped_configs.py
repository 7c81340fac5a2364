"""The shipped configs load, and describe what they say they do."""

from __future__ import annotations

from pathlib import Path

import pytest

from teachseg.config import load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize(
    "name",
    [
        "busi.yaml",
        "paper.yaml",
        "busi-quick.yaml",
        "demo.yaml",
        "ssl-busi.yaml",
        "ssl-busi-quick.yaml",
        "pretrain-busi.yaml",
    ],
)
def test_config_loads(name: str) -> None:
    cfg = load_config(CONFIGS / name)
    assert cfg.model.encoder == "resnet34"
    assert cfg.data.image_size % 32 == 0


def test_paper_is_the_study_protocol() -> None:
    cfg = load_config(CONFIGS / "paper.yaml")
    assert cfg.experiment.archs == ["linknet", "fpn"]
    assert cfg.experiment.seeds == [21, 42, 84]
    assert cfg.train.epochs == 100 and cfg.train.stop == "epochs"
    assert cfg.data.val_fraction == 0.05
    assert cfg.model.encoder_weights == "imagenet"
    assert cfg.loss.bce_weight == cfg.loss.dice_weight == 1.0


def test_ssl_busi_compares_every_method_on_one_grid() -> None:
    from teachseg.selftrain.experiment import plan

    cfg = load_config(CONFIGS / "ssl-busi.yaml")
    assert cfg.experiment.methods == ["supervised", "teacher_student", "mean_teacher", "fixmatch"]
    assert cfg.experiment.label_fractions == [0.125, 0.25, 0.5, 1.0]
    assert cfg.experiment.seeds == [21, 42, 84] and cfg.data.image_size == 128
    runs = plan(cfg, has_own_unlabelled=False)
    # 4 methods at 3 fractions, plus the supervised ceiling at 1, for each seed
    assert len(runs) == (4 * 3 + 1) * 3
    quick = load_config(CONFIGS / "ssl-busi-quick.yaml")
    assert quick.experiment.seeds == [21] and quick.experiment.label_fractions == [0.25, 1.0]


def test_ssl_busi_converges_and_chooses_on_a_selection_split() -> None:
    for name in ("ssl-busi.yaml", "ssl-busi-quick.yaml"):
        cfg = load_config(CONFIGS / name)
        assert cfg.train.stop == "converge" and cfg.train.schedule == "plateau", name
        assert cfg.data.select_fraction == 0.1 and cfg.selftrain.online.modality == "auto", name


def test_pretrain_busi_compares_pretraining_with_supervised_at_every_fraction() -> None:
    from teachseg.selftrain.experiment import plan

    cfg = load_config(CONFIGS / "pretrain-busi.yaml")
    assert cfg.pretrain.objective == "densecl" and cfg.pretrain.modality == "auto"
    assert cfg.model.encoder_weights is None
    runs = plan(cfg, has_own_unlabelled=False)
    # both arms at every fraction (pretraining needs no unlabelled images), for each seed
    assert {(r["method"], r["label_fraction"]) for r in runs} == {
        (m, f) for m in ("supervised", "pretrain") for f in (0.25, 0.5, 1.0)
    }
    assert len(runs) == 2 * 3 * 3
