"""The model factory, model folders (loadable by smp as is), local encoder weights, offline errors."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import segmentation_models_pytorch as smp
import torch

from teachseg.errors import ModelError
from teachseg.models import (
    ModelMeta,
    build_model,
    check_model_folder,
    count_parameters,
    load_model_folder,
    parameter_count,
    save_model_folder,
)

X = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))


class _ArchCase:
    """One architecture on tiny CPU tensors; each architecture is a two-line subclass."""

    arch = ""

    def test_builds_and_maps_images_to_one_logit_map(self) -> None:
        model = build_model(self.arch, "resnet18").eval()
        with torch.no_grad():
            out = model(X)
        assert out.shape == (1, 1, 64, 64)
        assert type(model).__name__.lower() == self.arch

    def test_parameter_count_on_meta_device_matches_a_real_model(self) -> None:
        n = parameter_count(self.arch, "resnet18")
        assert n == count_parameters(build_model(self.arch, "resnet18"))
        assert n > 1_000_000


class TestLinknet(_ArchCase):
    arch = "linknet"


class TestFPN(_ArchCase):
    arch = "fpn"


def test_unknown_architecture_lists_valid_names_and_suggests() -> None:
    with pytest.raises(ModelError) as err:
        build_model("linkent", "resnet18")
    msg = str(err.value)
    assert "unknown architecture 'linkent'" in msg
    assert "did you mean linknet" in msg
    assert "fpn" in msg and "unet" in msg


def test_unknown_encoder_lists_valid_names_and_suggests() -> None:
    with pytest.raises(ModelError) as err:
        build_model("linknet", "resnet19")
    msg = str(err.value)
    assert "unknown encoder 'resnet19'" in msg
    assert "did you mean" in msg and "resnet18" in msg
    assert "resnet34" in msg and "tu-<name>" in msg


def test_model_folder_loads_with_smp_as_is_and_gives_identical_outputs(tmp_path: Path) -> None:
    model = build_model("fpn", "resnet18").eval()
    folder = save_model_folder(model, tmp_path / "model", ModelMeta("fpn", "resnet18", image_size=64))
    assert {"config.json", "model.safetensors", "teachseg.json"} <= {p.name for p in folder.iterdir()}
    assert json.loads((folder / "config.json").read_text())["encoder_weights"] is None
    plain = smp.from_pretrained(str(folder)).eval()
    ours, meta = load_model_folder(folder)
    with torch.no_grad():
        ref = model(X)
        assert torch.equal(plain(X), ref)
        assert torch.equal(ours(X), ref)
    assert meta.arch == "fpn" and meta.image_size == 64 and meta.threshold == 0.5
    # saving again replaces the folder atomically: no temporary folders beside it
    save_model_folder(model, folder, meta)
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_load_model_folder_names_missing_files(tmp_path: Path) -> None:
    folder = save_model_folder(
        build_model("linknet", "resnet18"), tmp_path / "m", ModelMeta("linknet", "resnet18", 64)
    )
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelError, match=r"missing model\.safetensors") as err:
        load_model_folder(folder)
    assert str(folder) in str(err.value)
    with pytest.raises(ModelError, match="not found"):
        load_model_folder(tmp_path / "nowhere")


def test_teachseg_json_round_trips_and_a_newer_format_is_refused(tmp_path: Path) -> None:
    meta = ModelMeta("linknet", "resnet18", 64, mpp=0.5, summary={"val_dice": 0.7})
    folder = save_model_folder(build_model("linknet", "resnet18"), tmp_path / "m", meta)
    back = check_model_folder(folder)
    assert back == meta and back.format_version == 1 and back.mean == meta.mean
    data = json.loads((folder / "teachseg.json").read_text())
    assert list(data) == [*ModelMeta.model_fields]  # same keys, in the order teachseg 0.1 wrote them
    (folder / "teachseg.json").write_text(json.dumps({**data, "format_version": 99}))
    with pytest.raises(ModelError, match="newer teachseg") as err:
        check_model_folder(folder)
    assert "teachseg.json" in str(err.value) and "upgrade" in str(err.value)


def test_truncated_weights_give_a_model_error(tmp_path: Path) -> None:
    folder = save_model_folder(
        build_model("linknet", "resnet18"), tmp_path / "m", ModelMeta("linknet", "resnet18", 64)
    )
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelError, match=r"model\.safetensors.*cannot load"):
        load_model_folder(folder)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_local_encoder_weights(tmp_path: Path, suffix: str) -> None:
    source = build_model("linknet", "resnet18")
    state = {k: v.clone() for k, v in source.encoder.state_dict().items()}
    path = tmp_path / f"enc{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save({f"encoder.{k}": v for k, v in state.items()}, path)  # prefixed keys are accepted
    torch.manual_seed(123)  # a different random init for the rest
    target = build_model("fpn", "resnet18", encoder_weights=str(path))
    got = target.encoder.state_dict()
    assert set(got) == set(state)
    for key, value in state.items():
        assert torch.equal(got[key], value), key


@pytest.mark.parametrize("prefix", ["", "encoder."])
def test_timm_encoder_weights_keep_their_own_model_prefix(tmp_path: Path, prefix: str) -> None:
    from safetensors.torch import save_file

    from teachseg.models import build_encoder

    torch.manual_seed(0)
    state = build_encoder("tu-regnetx_002").state_dict()
    assert all(k.startswith("model.") for k in state)  # timm's keys: the prefix is theirs, not Lightning's
    path = tmp_path / "enc.safetensors"
    save_file({f"{prefix}{k}": v.contiguous() for k, v in state.items()}, str(path))
    torch.manual_seed(1)
    got = build_model("linknet", "tu-regnetx_002", encoder_weights=path).encoder.state_dict()
    assert all(torch.equal(got[k], v) for k, v in state.items())


def test_build_encoder_has_the_keys_of_every_architectures_encoder() -> None:
    from teachseg.models import build_encoder

    keys = set(build_encoder("resnet18").state_dict())
    for arch in ("linknet", "fpn", "unet", "deeplabv3plus"):
        assert set(build_model(arch, "resnet18").encoder.state_dict()) == keys, arch
    with pytest.raises(ModelError, match="smp cannot build encoder 'tu-vit_tiny_patch16_224'"):
        build_encoder("tu-vit_tiny_patch16_224")


def test_a_pretrain_folder_is_accepted_as_encoder_weights(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    state = build_model("linknet", "resnet18").encoder.state_dict()
    (tmp_path / "pt").mkdir()
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "pt" / "encoder.safetensors"))
    got = build_model("fpn", "resnet18", encoder_weights=tmp_path / "pt").encoder.state_dict()
    assert all(torch.equal(got[k], v) for k, v in state.items())


def test_mismatching_encoder_weights_are_refused(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    other = build_model("linknet", "resnet34").encoder.state_dict()
    path = tmp_path / "r34.safetensors"
    save_file({k: v.contiguous() for k, v in other.items()}, str(path))
    with pytest.raises(ModelError) as err:
        build_model("linknet", "resnet18", encoder_weights=str(path))
    assert str(path) in str(err.value)
    assert "do not match the encoder" in str(err.value) and "unexpected" in str(err.value)
    unrelated = tmp_path / "junk.safetensors"
    save_file({"foo": torch.zeros(2)}, str(unrelated))
    with pytest.raises(ModelError, match="tensors missing"):
        build_model("linknet", "resnet18", encoder_weights=str(unrelated))
    with pytest.raises(ModelError, match="not found"):
        build_model("linknet", "resnet18", encoder_weights=str(tmp_path / "none.pth"))


class _Evil:
    def __reduce__(self):  # would run code on unpickling
        return (Path("/tmp/teachseg-should-not-exist").touch, ())


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    with open(path, "wb") as fh:
        pickle.dump({"conv1.weight": _Evil()}, fh, protocol=2)
    with pytest.raises(ModelError, match="no pickled objects"):
        build_model("linknet", "resnet18", encoder_weights=str(path))
    assert not Path("/tmp/teachseg-should-not-exist").exists()


def test_imagenet_weights_offline_explain_how_to_go_offline(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    try:
        import huggingface_hub.constants as hc

        monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
        monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    except (ImportError, AttributeError):
        pass
    with pytest.raises(ModelError) as err:
        build_model("linknet", "resnet18", encoder_weights="imagenet")
    msg = str(err.value)
    assert "resnet18" in msg
    assert "HF_HUB_OFFLINE=1" in msg
    assert "local" in msg and "null" in msg


def test_dropout_hook_keeps_state_dict_and_is_active_only_in_training() -> None:
    torch.manual_seed(0)
    plain = build_model("linknet", "resnet18")
    torch.manual_seed(0)
    noisy = build_model("linknet", "resnet18", dropout=0.5)
    assert list(plain.state_dict()) == list(noisy.state_dict())
    noisy.load_state_dict(plain.state_dict())
    plain.eval()
    noisy.eval()
    with torch.no_grad():
        assert torch.equal(plain(X), noisy(X))
        noisy.train()
        plain.train()
        assert not torch.allclose(plain(X), noisy(X))


def test_a_model_with_head_dropout_saves_and_loads_as_a_plain_folder(tmp_path: Path) -> None:
    model = build_model("linknet", "resnet18", dropout=0.3).eval()
    folder = save_model_folder(model, tmp_path / "model", ModelMeta("linknet", "resnet18", image_size=64))
    loaded, _ = load_model_folder(folder)
    assert list(loaded.state_dict()) == list(model.state_dict())
    with torch.no_grad():
        assert torch.equal(loaded(X), model(X))  # dropout is off at inference: the folder predicts the same
    # and the saved weights start a dropout model again (a Student initialised from its Teacher)
    again = build_model("linknet", "resnet18", dropout=0.3)
    again.load_state_dict(loaded.state_dict(), strict=True)


@pytest.mark.parametrize(
    ("decoder", "student", "expected"), [(0.0, 0.0, 0.0), (0.2, 0.0, 0.2), (0.2, 0.5, 0.5)]
)
def test_model_decoder_dropout_reaches_the_trained_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, decoder: float, student: float, expected: float
) -> None:
    """``model.decoder_dropout`` used to be read nowhere; every trained model now gets it (a Student the larger
    of it and ``selftrain.student.dropout``), and train_model builds exactly the spec it is given."""
    from teachseg.config import build_config
    from teachseg.training import fit
    from teachseg.training.spec import ModelSpec

    cfg = build_config(
        {
            "model": {"arch": "linknet", "encoder": "resnet18", "decoder_dropout": decoder},
            "selftrain": {"student": {"dropout": student}},
        }
    )
    assert ModelSpec.teacher(cfg).dropout == decoder
    spec = ModelSpec.student(cfg)
    assert spec.dropout == expected

    seen: dict[str, float] = {}

    class _Stop(Exception):
        pass

    def fake_build_model(*args: object, dropout: float = 0.0, **kw: object) -> None:
        seen["dropout"] = dropout
        raise _Stop

    monkeypatch.setattr("teachseg.models.build_model", fake_build_model)
    with pytest.raises(_Stop):
        fit.train_model(cfg, tmp_path / "run", [], [], spec=spec)
    assert seen["dropout"] == expected
