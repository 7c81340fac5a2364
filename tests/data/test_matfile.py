"""Reading MATLAB ``.mat`` masks: v5 and v7.3, variable choice, singleton dimensions, broken files."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from teachseg.data.masks import read_mask
from teachseg.data.matfile import mat_variables, read_mat_array
from teachseg.errors import DataError

H, W = 16, 20


def _square() -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[4:10, 5:12] = True
    return m


def _mat73(path: Path, variables: dict[str, np.ndarray]) -> Path:
    """An HDF5 file laid out like MATLAB -v7.3: datasets stored transposed, plus MATLAB's #refs# group."""
    with h5py.File(path, "w", userblock_size=512) as fh:
        for name, value in variables.items():
            ds = fh.create_dataset(name, data=np.asarray(value).T)
            ds.attrs["MATLAB_class"] = np.bytes_("double")
        fh.create_group("#refs#").create_dataset("a", data=np.zeros((50, 50)))
    with open(path, "r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file".ljust(128, b" "))
    return path


def test_mat_v5_auto_picks_largest_2d_array(tmp_path: Path) -> None:
    path = tmp_path / "m.mat"
    small = np.ones((3, 3))
    scipy.io.savemat(
        path, {"inst_map": _square().astype(np.uint8) * 4, "tiny": small, "vec": np.arange(100.0)}
    )
    np.testing.assert_array_equal(read_mask([path]), _square())


def test_mat_v5_named_variable_and_missing_variable(tmp_path: Path) -> None:
    path = tmp_path / "m.mat"
    other = np.zeros((30, 30))
    scipy.io.savemat(path, {"mask": _square().astype(float), "big": other})
    np.testing.assert_array_equal(read_mask([path], mat_variable="mask"), _square())
    assert not read_mask([path]).any()  # auto picks the larger array
    with pytest.raises(DataError) as err:
        read_mask([path], mat_variable="nope")
    assert "m.mat" in str(err.value) and "big" in str(err.value) and "mask" in str(err.value)


def test_mat_v5_singleton_dims_are_squeezed(tmp_path: Path) -> None:
    path = tmp_path / "m.mat"
    scipy.io.savemat(path, {"mask": _square()[None, :, :, None].astype(np.uint8)})
    np.testing.assert_array_equal(read_mask([path]), _square())


def test_mat_without_2d_array_errors_with_listing(tmp_path: Path) -> None:
    path = tmp_path / "m.mat"
    scipy.io.savemat(path, {"vol": np.zeros((4, 5, 6)), "name": "abc", "v": np.arange(3.0)})
    with pytest.raises(DataError) as err:
        read_mask([path])
    text = str(err.value)
    assert "m.mat" in text and "vol 4x5x6" in text and "mat_variable" in text


def test_mat_v73_is_transposed_back(tmp_path: Path) -> None:
    mask = _square()
    path = _mat73(tmp_path / "m.mat", {"mask": mask.astype(float), "small": np.ones((2, 2))})
    assert h5py.is_hdf5(path)
    out = read_mask([path], expected_shape=(H, W))
    assert out.shape == (H, W)
    np.testing.assert_array_equal(out, mask)
    np.testing.assert_array_equal(read_mask([path], mat_variable="mask"), mask)
    with pytest.raises(DataError, match="mask 16x20"):
        read_mask([path], mat_variable="missing")


def test_mat_v73_without_2d_array(tmp_path: Path) -> None:
    path = _mat73(tmp_path / "m.mat", {"vol": np.zeros((2, 3, 4))})
    with pytest.raises(DataError, match=r"m\.mat.*no 2-D numeric array.*vol 2x3x4"):
        read_mask([path])


def test_corrupt_mat(tmp_path: Path) -> None:
    path = tmp_path / "m.mat"
    path.write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(DataError, match=r"m\.mat"):
        read_mask([path])


def test_mat_variables_lists_numeric_arrays_in_matlab_order(tmp_path: Path) -> None:
    path = tmp_path / "m.mat"
    scipy.io.savemat(path, {"mask": _square().astype(np.uint8), "name": "abc"})
    assert mat_variables(path) == {"mask": (H, W)}
    np.testing.assert_array_equal(read_mat_array(path) > 0, _square())
    v73 = _mat73(tmp_path / "n.mat", {"mask": _square().astype(float)})
    assert mat_variables(v73) == {"mask": (H, W)}
