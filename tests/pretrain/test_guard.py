"""An encoder pretrained on images this run holds out is refused, naming the file, the count and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from teachseg.errors import ConfigError
from teachseg.pretrain.guard import check_pretrained_encoder, pretrain_leaks
from teachseg.pretrain.method import resolve_encoder_weights
from teachseg.pretrain.pool import content_hashes, held_out_records, pool_records
from teachseg.pretrain.record import PretrainRecord
from teachseg.training.identity import file_sha256
from tests.pretrain.conftest import make_config, prepared


def _folder(path: Path, images: list[str], encoder: str = "resnet18") -> Path:
    """A pretrain folder whose record says it saw ``images`` (weights: placeholder bytes, hashed)."""
    path.mkdir(parents=True)
    (path / "encoder.safetensors").write_bytes(b"weights of " + path.name.encode())
    PretrainRecord(
        objective="densecl",
        encoder=encoder,
        seed=0,
        identity="0" * 16,
        images=images,
        encoder_sha256=file_sha256(path / "encoder.safetensors"),
    ).write(path / "pretrain.json")
    return path


@pytest.fixture
def runs(synth_data: Path, tmp_path: Path):
    """This run (seed 2, with a test split) and the pool of another seed's run."""
    this = prepared(make_config(synth_data, tmp_path, seed=2, data={"test_fraction": 0.2}))
    other = prepared(make_config(synth_data, tmp_path, seed=1, data={"test_fraction": 0.2}))
    return this, content_hashes(pool_records(other))


def test_encoder_of_another_split_is_refused(runs, tmp_path: Path) -> None:
    this, other_pool = runs
    folder = _folder(tmp_path / "other", other_pool)
    leaks = pretrain_leaks(PretrainRecord.read(folder / "pretrain.json"), this)
    held = {r.id for r in held_out_records(this)}
    assert leaks and {r.id for r in leaks} <= held
    for weights in (folder, folder / "encoder.safetensors"):  # the folder or its file
        with pytest.raises(ConfigError) as err:
            check_pretrained_encoder(weights, "resnet18", this)
        msg = str(err.value)
        assert str(folder / "encoder.safetensors") in msg
        assert f"saw {len(leaks)} image(s) this run holds out" in msg
        assert "pretrain with this run's config and seed" in msg


def test_one_held_out_image_is_enough(runs, tmp_path: Path) -> None:
    this, _ = runs
    own = content_hashes(pool_records(this))
    test_image = next(r for r in held_out_records(this) if r.id in this.split.test)
    folder = _folder(tmp_path / "one", [*own, file_sha256(test_image.image)])
    with pytest.raises(ConfigError, match=r"saw 1 image\(s\)"):
        check_pretrained_encoder(folder, "resnet18", this)


def test_encoder_of_this_split_is_accepted(runs, tmp_path: Path) -> None:
    this, _ = runs
    folder = _folder(tmp_path / "own", content_hashes(pool_records(this)))
    record = check_pretrained_encoder(folder, "resnet18", this)
    assert record is not None and record.encoder == "resnet18"


def test_weights_without_a_record_are_not_checked(runs, tmp_path: Path) -> None:
    this, _ = runs
    plain = tmp_path / "plain.pth"
    plain.write_bytes(b"x")
    assert check_pretrained_encoder(plain, "resnet18", this) is None
    assert check_pretrained_encoder(None, "resnet18", this) is None
    assert check_pretrained_encoder("imagenet", "resnet18", this) is None


def test_record_of_other_weights_or_encoder_is_refused(runs, tmp_path: Path) -> None:
    this, _ = runs
    own = content_hashes(pool_records(this))
    folder = _folder(tmp_path / "swapped", own)
    (folder / "encoder.safetensors").write_bytes(b"other weights")
    with pytest.raises(ConfigError, match="not the ones pretrain.json beside them describes"):
        check_pretrained_encoder(folder, "resnet18", this)
    folder = _folder(tmp_path / "r34", own, encoder="resnet34")
    with pytest.raises(ConfigError, match="pretrained for encoder 'resnet34'.*'resnet18'"):
        check_pretrained_encoder(folder, "resnet18", this)


def test_resolving_a_config_checks_its_weights(runs, synth_data: Path, tmp_path: Path) -> None:
    this, other_pool = runs
    folder = _folder(tmp_path / "other", other_pool)
    cfg = make_config(synth_data, tmp_path, seed=2, model={"encoder_weights": str(folder)})
    with pytest.raises(ConfigError, match="model.encoder_weights"):
        resolve_encoder_weights(cfg, this)
    student = make_config(
        synth_data,
        tmp_path,
        seed=2,
        selftrain={"student": {"encoder": "resnet18", "encoder_weights": str(folder)}},
    )
    with pytest.raises(ConfigError, match="selftrain.student.encoder_weights"):
        resolve_encoder_weights(student, this)
