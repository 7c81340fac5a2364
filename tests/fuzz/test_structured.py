"""Broken structured files: tile manifests, QuPath GeoJSON, YAML configs (Hypothesis + mutations)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from teachseg.config import load_config
from teachseg.data.grouping import slides_from_manifests
from teachseg.data.records import Sample
from teachseg.data.tile_scale import tiles_mpp
from teachseg.data.tile_slides import load_annotations
from tests.fuzz.conftest import check, mutations

FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_values = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids, max_size=4),
    max_leaves=20,
)


def _with_keys(keys: list[str]) -> st.SearchStrategy[Any]:
    """Dicts that use the reader's own keys, with values of any JSON type (the likeliest confusion)."""
    return st.dictionaries(st.sampled_from(keys), json_values, max_size=len(keys)) | json_values


def _deep(n: int) -> str:
    return "[" * n + "]" * n


# ------------------------------------------------------------------------------------------ manifests


def _read_manifest(path: Path) -> None:
    folder = path.parent
    (folder / "images").mkdir(exist_ok=True)
    image = folder / "images" / "t0.png"
    slides_from_manifests([Sample(id="images/t0.png", image=image)])
    tiles_mpp(folder, 256)


MANIFEST = {"slide": "s.svs", "mpp": 0.5, "tiles": [{"name": "t0", "x": 0, "y": 0}]}


@FUZZ
@given(obj=_with_keys(["tiles", "mpp", "slide", "name"]) | st.builds(lambda t: {"tiles": t}, json_values))
def test_manifest_any_json(obj: Any, tmp_path: Path) -> None:
    path = tmp_path / "s_tiles.json"
    path.write_text(json.dumps(obj), encoding="utf-8")
    check(_read_manifest, path)


def test_manifest_mutations(tmp_path: Path, fuzz_flips: int) -> None:
    for i, (label, blob) in enumerate(mutations(json.dumps(MANIFEST).encode(), 1, fuzz_flips)):
        folder = tmp_path / f"m{i}"
        folder.mkdir()
        path = folder / f"{label}_tiles.json"
        path.write_bytes(blob)
        check(_read_manifest, path)
    deep = tmp_path / "deep"
    deep.mkdir()
    (deep / "x_tiles.json").write_text(_deep(100_000))
    check(_read_manifest, deep / "x_tiles.json")


# ---------------------------------------------------------------------------------------------- GeoJSON

FEATURE = {
    "type": "Feature",
    "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [10, 0], [10, 10], [0, 0]]]},
    "properties": {"classification": {"name": "Tumor"}},
}


def _read_geojson(path: Path) -> None:
    load_annotations(path, classes=None, negative=["Stroma"])


@FUZZ
@given(
    obj=_with_keys(["type", "features", "geometry", "properties", "coordinates"])
    | st.builds(
        lambda g, p, t: {
            "type": "FeatureCollection",
            "features": [{"type": "Feature", "geometry": g, "properties": p}, t],
        },
        _with_keys(["type", "coordinates"]),
        _with_keys(["classification", "name"]),
        json_values,
    )
)
def test_geojson_any_json(obj: Any, tmp_path: Path) -> None:
    path = tmp_path / "a.geojson"
    path.write_text(json.dumps(obj), encoding="utf-8")
    check(_read_geojson, path)


def test_geojson_mutations(tmp_path: Path, fuzz_flips: int) -> None:
    seed = json.dumps({"type": "FeatureCollection", "features": [FEATURE]}).encode()
    for i, (label, blob) in enumerate(mutations(seed, 2, fuzz_flips)):
        path = tmp_path / f"{label}_{i}.geojson"
        path.write_bytes(blob)
        check(_read_geojson, path)
    path = tmp_path / "deep.geojson"
    path.write_text(_deep(100_000))
    check(_read_geojson, path)


# ---------------------------------------------------------------------------------------------- configs


def _read_config(path: Path) -> None:
    load_config(path)


@FUZZ
@given(obj=_with_keys(["name", "seed", "data", "model", "train", "loss", "selftrain"]))
def test_config_any_yaml(obj: Any, tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(obj), encoding="utf-8")
    check(_read_config, path)


@FUZZ
@given(text=st.text(max_size=200))
def test_config_any_text(text: str, tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    check(_read_config, path)


def test_config_mutations(tmp_path: Path, fuzz_flips: int) -> None:
    seed = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"
    for i, (label, blob) in enumerate(mutations(seed.read_bytes(), 3, fuzz_flips)):
        path = tmp_path / f"{label}_{i}.yaml"
        path.write_bytes(blob)
        check(_read_config, path)
    bomb = tmp_path / "bomb.yaml"  # "billion laughs": aliases that expand exponentially
    bomb.write_text(
        "a: &a [x,x,x,x,x,x,x,x,x]\n"
        + "".join(
            f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
            for p, c in zip("abcdefgh", "bcdefghi", strict=True)
        )
    )
    check(_read_config, bomb)
    deep = tmp_path / "deep.yaml"
    deep.write_text(_deep(100_000))
    check(_read_config, deep)
