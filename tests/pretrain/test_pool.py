"""The pool a pretraining sees: the run's training side only, and the same at every label fraction."""

from __future__ import annotations

from pathlib import Path

from teachseg.pretrain.pool import (
    cache_dir,
    content_hashes,
    held_out_records,
    pool_records,
    pretrain_identity,
    resolved_settings,
)
from tests.pretrain.conftest import make_config, prepared


def test_pool_is_train_plus_unlabelled_and_never_held_out(synth_data: Path, tmp_path: Path) -> None:
    data = prepared(make_config(synth_data, tmp_path, data={"test_fraction": 0.2, "label_fraction": 0.5}))
    pool = {r.id for r in pool_records(data)}
    split = data.split
    assert pool == set(split.train) | set(split.unlabelled)
    assert split.label_dropped and set(split.label_dropped) <= pool  # withheld masks: still trained on
    held = {r.id for r in held_out_records(data)}
    assert set(split.val) | set(split.test) <= held
    assert not pool & held
    assert pool | held == {s.id for s in data.discovery.samples}
    assert all(not r.masks for r in pool_records(data))  # masks are never read


def test_pool_does_not_depend_on_label_fraction(synth_data: Path, tmp_path: Path) -> None:
    pools, trains, identities = [], [], []
    for fraction in (1.0, 0.5, 0.25):
        cfg = make_config(synth_data, tmp_path, data={"label_fraction": fraction})
        data = prepared(cfg)
        pool = pool_records(data)
        pools.append([r.id for r in pool])
        trains.append(set(data.split.train))
        identities.append(
            pretrain_identity("resnet18", cfg.seed, resolved_settings(cfg, "he"), content_hashes(pool))
        )
    assert pools[0] == pools[1] == pools[2]
    assert trains[0] > trains[1] > trains[2]  # the label fraction did change the labelled images
    assert identities[0] == identities[1] == identities[2]


def test_pool_and_identity_depend_on_the_seed(synth_data: Path, tmp_path: Path) -> None:
    a = prepared(make_config(synth_data, tmp_path, seed=1))
    b = prepared(make_config(synth_data, tmp_path, seed=2))
    assert [r.id for r in pool_records(a)] != [r.id for r in pool_records(b)]
    settings = resolved_settings(make_config(synth_data, tmp_path), "he")
    ids = {
        pretrain_identity("resnet18", s, settings, content_hashes(pool_records(d)))
        for s, d in ((1, a), (2, b))
    }
    assert len(ids) == 2


def test_identity_follows_every_setting_and_image(synth_data: Path, tmp_path: Path) -> None:
    cfg = make_config(synth_data, tmp_path)
    settings = resolved_settings(cfg, "he")
    hashes = ["a" * 64, "b" * 64]
    base = pretrain_identity("resnet18", 0, settings, hashes)
    assert pretrain_identity("resnet18", 0, settings, list(reversed(hashes))) == base  # order is irrelevant
    assert pretrain_identity("resnet34", 0, settings, hashes) != base
    assert pretrain_identity("resnet18", 1, settings, hashes) != base
    assert pretrain_identity("resnet18", 0, {**settings, "lr": 0.01}, hashes) != base
    assert pretrain_identity("resnet18", 0, settings, hashes[:1]) != base
    folder = cache_dir(cfg, "resnet18", 0, base)
    assert folder.parent == tmp_path / "pretrain" and folder.name == f"resnet18_seed0_{base[:10]}"


def test_settings_default_to_the_data_image_size(synth_data: Path, tmp_path: Path) -> None:
    cfg = make_config(synth_data, tmp_path, data={"image_size": 128})
    assert resolved_settings(cfg, "ultrasound")["image_size"] == 128
    cfg = make_config(synth_data, tmp_path, data={"image_size": 128}, pretrain={"image_size": 64})
    settings = resolved_settings(cfg, "ultrasound")
    assert settings["image_size"] == 64 and settings["modality"] == "ultrasound"
