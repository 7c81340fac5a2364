"""Config: defaults, unknown keys, validation messages, --set overrides, path resolution."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from teachseg.config import Config, build_config, load_config
from teachseg.errors import ConfigError


def test_defaults_match_the_paper_protocol() -> None:
    cfg = Config()
    assert cfg.model.arch == "linknet"
    assert cfg.model.encoder == "resnet34"
    assert cfg.data.val_fraction == pytest.approx(0.05)
    assert cfg.data.image_size == 256
    assert load_config(None).model_dump() == cfg.model_dump()


def test_unknown_top_level_key_names_it_and_lists_valid_keys() -> None:
    with pytest.raises(ConfigError) as err:
        build_config({"modle": {}}, "cfg.yaml")
    msg = str(err.value)
    assert "cfg.yaml" in msg
    assert "'modle'" in msg
    for key in ("data", "model", "train", "seed"):
        assert key in msg


def test_unknown_nested_key_lists_the_keys_of_its_section() -> None:
    with pytest.raises(ConfigError) as err:
        build_config({"data": {"imagesize": 128}})
    msg = str(err.value)
    assert "'data.imagesize'" in msg
    assert "image_size" in msg and "batch_size" in msg and "val_fraction" in msg
    # the keys of other sections are not offered
    assert "encoder" not in msg


def test_image_size_not_multiple_of_32_suggests_neighbours() -> None:
    with pytest.raises(ConfigError) as err:
        build_config({"data": {"image_size": 100}})
    msg = str(err.value)
    assert "data.image_size" in msg
    assert "96" in msg and "128" in msg


def test_set_overrides_nested_and_typed_values(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"train": {"epochs": 3}}), encoding="utf-8")
    cfg = load_config(
        path,
        [
            "train.epochs=5",
            "train.lr=2e-4",
            "data.augment.hflip=false",
            "experiment.seeds=[1, 2]",
            "model.encoder_weights=null",
            "name=abc",
        ],
    )
    assert cfg.train.epochs == 5
    assert cfg.train.lr == pytest.approx(2e-4)
    assert cfg.data.augment.hflip is False
    assert cfg.experiment.seeds == [1, 2]
    assert cfg.model.encoder_weights is None
    assert cfg.name == "abc"


def test_set_unknown_key_and_malformed_override() -> None:
    with pytest.raises(ConfigError, match=r"'train\.epoch'.*epochs"):
        build_config({}, overrides=["train.epoch=3"])
    with pytest.raises(ConfigError, match="key=value"):
        build_config({}, overrides=["train.epochs"])


def test_empty_seed_list_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"experiment\.seeds.*empty"):
        build_config({"experiment": {"seeds": []}})


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path, monkeypatch) -> None:
    cfg_dir = tmp_path / "configs"
    cfg_dir.mkdir()
    (cfg_dir / "data").mkdir()
    path = cfg_dir / "c.yaml"
    path.write_text(yaml.safe_dump({"data": {"root": "data", "unlabelled_dirs": ["more"]}}), encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # neither 'data' nor 'more' exists here
    cfg = load_config(path)
    assert cfg.data.root == cfg_dir / "data"
    assert cfg.data.unlabelled_dirs == [cfg_dir / "more"]
    # a path that exists in the working directory is kept as given
    (tmp_path / "data").mkdir()
    assert load_config(path).data.root == Path("data")


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="YAML"):
        load_config(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(listing)


def test_yaml_round_trip_and_hash() -> None:
    cfg = build_config({"seed": 7, "train": {"epochs": 2}})
    again = build_config(yaml.safe_load(cfg.to_yaml()))
    assert again.to_dict() == cfg.to_dict()
    assert again.hash() == cfg.hash()
    assert build_config({"seed": 8}).hash() != cfg.hash()


@pytest.mark.parametrize(
    ("key", "value", "suggestion"),
    [
        ("model.arch", "linknett", "linknet"),
        ("model.encoder", "resnet181", "resnet18"),
        ("train.precision", "bf61", "bf16"),
        ("train.accelerator", "cpuu", "cpu"),
        ("train.strategy", "dpp", "ddp"),
        ("selftrain.student.arch", "fnp", "fpn"),
        ("selftrain.student.encoder", "resnet1", "resnet18"),
        ("experiment.archs", "[linknet, fnp]", "fpn"),
    ],
)
def test_unknown_names_fail_when_the_config_loads(
    tmp_path: Path, key: str, value: str, suggestion: str
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("seed: 1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path, [f"{key}={value}"])
    msg = str(err.value)
    assert str(path) in msg and key in msg and "unknown" in msg
    assert f"did you mean {suggestion}" in msg and "Fix: use one of" in msg


def test_names_written_by_earlier_configs_still_load_as_written(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    train = {"precision": "bf16-mixed", "accelerator": "cpu", "strategy": "ddp_spawn"}
    path.write_text(yaml.safe_dump({"model": {"arch": "fpn", "encoder": "resnet18"}, "train": train}))
    cfg = load_config(path)
    assert cfg.to_dict()["train"] == {**cfg.to_dict()["train"], **train}
    assert (cfg.model.arch, cfg.model.encoder) == ("fpn", "resnet18")
    for name in ("32-true", "16-mixed", "32", "fp32", "auto"):
        assert build_config({"train": {"precision": name}}).train.precision == name


def test_semi_supervised_settings_are_checked_when_the_config_loads() -> None:
    from teachseg.config import build_config
    from teachseg.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        build_config({"selftrain": {"method": "unimatch"}}, "test")
    text = str(err.value)
    assert all(m in text for m in ("teacher_student", "mean_teacher", "fixmatch", "supervised"))
    for bad in (0.5, 1.0, 0.3):
        with pytest.raises(ConfigError, match=r"\(0.5, 1\)"):
            build_config({"selftrain": {"online": {"confidence": bad}}}, "test")
    with pytest.raises(ConfigError, match="epoch_over") as err:
        build_config({"selftrain": {"online": {"epoch_over": "both"}}}, "test")
    assert "'labelled' or 'unlabelled'" in str(err.value)
    assert build_config({}, "t").selftrain.online.epoch_over == "labelled"  # the supervised baseline's steps
    with pytest.raises(ConfigError, match=r"label fractions must be in \(0, 1\]"):
        build_config({"experiment": {"label_fractions": [0.25, 1.5]}}, "test")
    cfg = build_config(
        {"experiment": {"methods": ["fixmatch", "supervised"], "label_fractions": [1, 0.25]}}, "t"
    )
    assert cfg.experiment.label_fractions == [0.25, 1.0]
