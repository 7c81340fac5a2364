"""One test per defect the fuzz suite found (each failed before its fix)."""

from __future__ import annotations

from pathlib import Path

import pytest

from teachseg.config import load_config
from teachseg.data.grouping import slides_from_manifests
from teachseg.data.records import Sample
from teachseg.data.tile_scale import tiles_mpp
from teachseg.data.tile_slides import load_annotations
from teachseg.errors import ConfigError, DataError, ModelError
from teachseg.models import META_FILE, check_model_folder
from teachseg.reports.readers import Warnings, read_json

DEEP = "[" * 100_000 + "]" * 100_000


def test_deeply_nested_manifest_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "s_tiles.json").write_text(DEEP)
    assert slides_from_manifests([Sample(id="t0.png", image=tmp_path / "t0.png")]) == {}
    assert tiles_mpp(tmp_path, 256) is None


@pytest.mark.parametrize("content", ["null", "[1]", '{"mpp": [null]}', '{"mpp": "fine"}', '{"mpp": 1e999}'])
def test_manifest_of_another_shape_has_no_resolution(tmp_path: Path, content: str) -> None:
    (tmp_path / "s_tiles.json").write_text(content)
    assert tiles_mpp(tmp_path, 256) is None


def test_deeply_nested_geojson_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "a.geojson"
    path.write_text(DEEP)
    with pytest.raises(DataError, match="nested too deeply"):
        load_annotations(path)


def test_config_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(b"name: \x97x\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


def test_deeply_nested_yaml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(DEEP)
    with pytest.raises(ConfigError, match="c.yaml"):
        load_config(path)


def test_deeply_nested_run_json_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    path.write_text(DEEP)
    warn = Warnings()
    assert read_json(path, warn) is None and "corrupt JSON" in warn.messages[0]


def _meta_folder(tmp_path: Path, content: bytes) -> Path:
    for name in ("config.json", "model.safetensors"):
        (tmp_path / name).write_bytes(b"{}")
    (tmp_path / META_FILE).write_bytes(content)
    return tmp_path


@pytest.mark.parametrize(
    "content",
    [
        b"null",
        b"[]",
        b"\xf2\x80 not utf-8",
        b'{"arch": "unet", "encoder": "resnet18", "image_size": "big"}',
        b'{"arch": ["unet"], "encoder": "resnet18", "image_size": 32}',
        b'{"arch": "unet", "encoder": "resnet18", "image_size": 32, "mean": 3}',
        b'{"arch": "unet", "encoder": "resnet18", "image_size": 32, "std": [0, 1, 1]}',
        b'{"arch": "unet", "encoder": "resnet18", "image_size": 32, "mpp": -1}',
        DEEP.encode(),
    ],
)
def test_broken_teachseg_json_is_a_model_error(tmp_path: Path, content: bytes) -> None:
    with pytest.raises(ModelError, match=META_FILE):
        check_model_folder(_meta_folder(tmp_path, content))


def test_valid_teachseg_json_still_loads(tmp_path: Path) -> None:
    meta = check_model_folder(
        _meta_folder(tmp_path, b'{"arch": "unet", "encoder": "resnet18", "image_size": 32}')
    )
    assert meta.image_size == 32 and len(meta.mean) == 3


@pytest.mark.parametrize("offset, value", [(176, 130), (177, 4)])
def test_mat5_with_an_unknown_data_type_is_refused_not_a_crash(
    tmp_path: Path, offset: int, value: int
) -> None:
    """Defect found by the fuzzer: scipy.io.loadmat dies with a segmentation fault on a v5 file whose
    matrix holds an element of unknown data type (one flipped bit). Run in a subprocess: a crash is loud."""
    import io
    import subprocess
    import sys

    import numpy as np
    import scipy.io

    buf = io.BytesIO()
    mask = np.zeros((24, 32), np.uint8)
    mask[5:15, 8:20] = 255
    scipy.io.savemat(buf, {"mask": mask})
    data = bytearray(buf.getvalue())
    data[offset] = value
    path = tmp_path / "m.mat"
    path.write_bytes(bytes(data))
    code = (
        "import sys; from pathlib import Path; from teachseg.data.masks import read_mask\n"
        "from teachseg.errors import DataError\n"
        f"try:\n    read_mask([Path({str(path)!r})])\nexcept DataError as e:\n    print(e)\n    sys.exit(3)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, r.stderr[-500:]
    assert "m.mat" in r.stdout and "unknown data type" in r.stdout


def test_config_key_with_a_newline_gives_one_line(tmp_path: Path) -> None:
    """Defect found by Hypothesis: ``{"data": {"\\n": null}}`` gave a two-line 'unknown config key' error."""
    path = tmp_path / "c.yaml"
    path.write_text('data:\n  "\\n": null\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "\n" not in str(info.value) and "c.yaml" in str(info.value)
