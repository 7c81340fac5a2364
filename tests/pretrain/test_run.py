"""One pretraining end to end: the folder it writes, weights that every architecture loads, an interrupted run
that resumes to the uninterrupted result, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from teachseg.config import Config
from teachseg.data.datasets import Record
from teachseg.errors import ConfigError, DataError
from teachseg.models import build_model
from teachseg.pretrain.module import PretrainModule
from teachseg.pretrain.pool import content_hashes, pool_records, pretrain_identity, resolved_settings
from teachseg.pretrain.record import PretrainRecord
from teachseg.pretrain.run import IDENTITY_FILE, finished, pretrain_encoder, probe_encoder
from tests.pretrain.conftest import make_config, prepared


def _pretrain(cfg: Config, out: Path, **kwargs) -> PretrainRecord:
    data = prepared(cfg)
    pool = pool_records(data)
    settings = resolved_settings(cfg, "he")
    identity = pretrain_identity(cfg.model.encoder, cfg.seed, settings, content_hashes(pool))
    return pretrain_encoder(
        cfg, pool, out, encoder=cfg.model.encoder, settings=settings, identity=identity, **kwargs
    )


def test_pretraining_writes_encoder_and_record(synth_data: Path, tmp_path: Path) -> None:
    cfg = make_config(synth_data, tmp_path, pretrain={"epochs": 2})
    out = tmp_path / "pt"
    record = _pretrain(cfg, out)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["encoder.safetensors", "pretrain.json", IDENTITY_FILE, "logs"]
    )  # checkpoints are gone once the encoder is final
    assert PretrainRecord.read(out / "pretrain.json") == record
    pool = pool_records(prepared(cfg))
    assert record.images == content_hashes(pool) and record.image_ids == [r.id for r in pool]
    assert record.objective == "densecl" and record.encoder == "resnet18" and record.epochs == 2
    assert record.steps == 2 * (len(pool) // 4) and len(record.loss_per_epoch) == 2
    assert (
        record.seconds
        and record.seconds > 0
        and record.device_kind == "cpu"
        and record.device.startswith("cpu")
    )
    assert set(record.versions) >= {
        "teachseg",
        "lightly",
        "torch",
        "lightning",
        "segmentation_models_pytorch",
    }
    assert finished(out, record.identity) == record and finished(out, "other") is None
    trained = load_file(str(out / "encoder.safetensors"))
    for arch in ("linknet", "fpn", "unet"):  # smp's encoder keys, whatever the decoder
        model = build_model(arch, "resnet18", out)
        assert all(torch.equal(model.encoder.state_dict()[k], v) for k, v in trained.items())
    fresh = build_model("linknet", "resnet18", None).encoder.state_dict()
    assert not torch.equal(fresh["layer1.0.conv1.weight"], trained["layer1.0.conv1.weight"])
    again = _pretrain(cfg, out, resume=True)  # finished: returned as it is
    assert again == record


def test_interrupted_pretraining_resumes_to_the_same_encoder(
    synth_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = make_config(synth_data, tmp_path, pretrain={"epochs": 3, "memory_bank": 16})
    whole = _pretrain(cfg, tmp_path / "whole")

    original = PretrainModule.on_train_epoch_start

    def crash_in_epoch_three(self: PretrainModule) -> None:
        if self.current_epoch == 2:
            raise RuntimeError("killed")
        original(self)

    monkeypatch.setattr(PretrainModule, "on_train_epoch_start", crash_in_epoch_three)
    with pytest.raises(RuntimeError, match="killed"):
        _pretrain(cfg, tmp_path / "cut")
    assert (tmp_path / "cut" / "checkpoints" / "last.ckpt").is_file()
    assert not (tmp_path / "cut" / "pretrain.json").exists()
    monkeypatch.setattr(PretrainModule, "on_train_epoch_start", original)
    resumed = _pretrain(cfg, tmp_path / "cut", resume=True)
    assert resumed.loss_per_epoch == pytest.approx(whole.loss_per_epoch, abs=1e-5)
    assert resumed.steps == whole.steps
    a, b = (
        load_file(str(tmp_path / "whole" / "encoder.safetensors")),
        load_file(str(tmp_path / "cut" / "encoder.safetensors")),
    )
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-5) for k in a)


def test_a_folder_of_another_pretraining_is_refused(synth_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "pt"
    _pretrain(make_config(synth_data, tmp_path, seed=1), out)
    with pytest.raises(ConfigError, match="holds another pretraining.*--overwrite"):
        _pretrain(make_config(synth_data, tmp_path, seed=2), out, resume=True)


def test_too_few_images(synth_data: Path, tmp_path: Path) -> None:
    cfg = make_config(synth_data, tmp_path)
    one = [Record("a", next((synth_data / "images").iterdir()))]
    with pytest.raises(DataError, match="at least 2 readable training images, and this run has 1"):
        pretrain_encoder(
            cfg, one, tmp_path / "pt", encoder="resnet18", settings=resolved_settings(cfg, "he"), identity="x"
        )


def test_encoders_that_cannot_be_pretrained(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="encoder 'tu-vit_tiny_patch16_224' cannot be pretrained.*resnet34"):
        probe_encoder("tu-vit_tiny_patch16_224", 64, "simclr")
    with pytest.raises(ConfigError, match="deepest feature map, which is 1 x 1 at 32 px.*simclr"):
        probe_encoder("resnet18", 32, "densecl")
    assert probe_encoder("resnet18", 32, "simclr") is not None
