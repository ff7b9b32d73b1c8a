"""Bring-your-own .npz: validation errors name the file and the key."""

import numpy as np
import pytest

from workflow_lib.config import DataConfig
from workflow_lib.datasets import DataUnavailableError, NpzFormatError
from workflow_lib.datasets import npz as npz_ds


def _cfg(path, task="classification", **source):
    return DataConfig.from_dict({"kind": "npz", "source": {"path": str(path) if path else None, "task": task, **source}})


def _fetch_prepare(cfg, tmp_path):
    return npz_ds.prepare(cfg, npz_ds.fetch(cfg, tmp_path))


def _write(tmp_path, name="d.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


X = np.random.default_rng(0).random((6, 1, 3, 3))


@pytest.mark.parametrize(
    "arrays, task, pattern",
    [
        ({"y": np.zeros(6, int)}, "classification", "required key 'x' is missing"),
        ({"x": X}, "classification", "required key 'y' is missing"),
        ({"x": X[:, 0], "y": np.zeros(6, int)}, "classification", r"'x' must have 4 dimensions .* \(6, 3, 3\)"),
        ({"x": X, "y": np.zeros((6, 2))}, "regression", "'y' must have 1 dimension"),
        ({"x": X, "y": np.zeros(5, int)}, "classification", "'x' has 6 samples but key 'y' has 5"),
        ({"x": np.where(X > 0.5, np.nan, X), "y": np.zeros(6, int)}, "classification", "'x' holds .* non-finite"),
        ({"x": X, "y": np.array([0, 1, np.inf, 0, 1, 0])}, "regression", "'y' holds non-finite values .* index 2"),
        ({"x": X, "y": np.array([0, 1, 1.5, 0, 1, 0])}, "classification", "integer class labels.* index 2"),
        ({"x": X, "y": np.array([0, -1, 1, 0, 1, 0])}, "classification", "negative class labels"),
        ({"x": X, "y": np.array(["a"] * 6)}, "classification", "'y' must be numeric"),
        ({"x": X, "y": np.arange(6) % 3, "class_names": np.array(["a", "b"])}, "classification", "'class_names' has 2"),
    ],
)
def test_validation_errors_name_file_and_key(tmp_path, arrays, task, pattern):
    path = _write(tmp_path, **arrays)
    with pytest.raises(NpzFormatError, match=pattern) as info:
        _fetch_prepare(_cfg(path, task), tmp_path)
    assert str(path) in str(info.value)


def test_missing_file_and_unset_path(tmp_path):
    with pytest.raises(DataUnavailableError, match="missing.npz"):
        _fetch_prepare(_cfg(tmp_path / "missing.npz"), tmp_path)
    with pytest.raises(NpzFormatError, match="source.path is not set"):
        _fetch_prepare(_cfg(None), tmp_path)


def test_not_an_npz_and_object_arrays(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"garbage")
    with pytest.raises(NpzFormatError, match="junk.npz"):
        _fetch_prepare(_cfg(junk), tmp_path)
    obj = _write(tmp_path, "obj.npz", x=X, y=np.array([{"a": 1}] * 6, dtype=object))
    with pytest.raises(NpzFormatError, match="obj.npz"):
        _fetch_prepare(_cfg(obj), tmp_path)
    single = tmp_path / "single.npy"
    np.save(single, X)
    with pytest.raises(NpzFormatError, match="single .npy"):
        _fetch_prepare(_cfg(single), tmp_path)


def test_valid_classification_and_regression(tmp_path):
    xs = (np.random.default_rng(1).random((10, 3, 4, 4)) * 255).astype(np.uint8)
    path = _write(tmp_path, x=xs, y=np.array([0, 1, 2, 1, 0, 2, 2, 1, 0, 1.0]), class_names=np.array(["r", "g", "b"]))
    data = _fetch_prepare(_cfg(path), tmp_path)
    assert data.class_names == ("r", "g", "b") and data.y.dtype == np.int64
    np.testing.assert_allclose(data.x, xs / 255.0, rtol=1e-6)
    assert data.provenance["scaling"].startswith("uint8")

    path = _write(tmp_path, "r.npz", x=X, y=np.linspace(1, 2, 6)[:, None], target_name=np.array("energy"))
    data = _fetch_prepare(_cfg(path, "regression", subset=4, seed=1), tmp_path)
    assert data.n == 4 and data.target == "energy" and data.target_names == ("energy",) and data.out_dim == 1
    assert data.provenance["n_pool"] == 6
