import json

import numpy as np
import pytest

from workflow_lib.datasets.prepared import PreparedData, PreparedDataError
from workflow_lib.datasets.splits import make_split


def _regression(n=20):
    rng = np.random.default_rng(0)
    targets = rng.random((n, 3)).astype(np.float32)
    return PreparedData(
        x=rng.integers(0, 2, size=(n, 1, 32, 80)),
        y=targets[:, 1],
        task="regression",
        target="toughness",
        targets=targets,
        target_names=("yield_strain", "toughness", "yield_stress"),
        split=make_split(n),
        coarse=rng.integers(0, 2, size=(n, 3, 5)),
        provenance={"source": "surrogate", "n_samples": n, "nested": {"a": [1, 2]}},
    )


def _classification(n=30):
    rng = np.random.default_rng(1)
    return PreparedData(
        x=rng.random((n, 3, 8, 8)),
        y=rng.integers(0, 4, size=n),
        task="classification",
        target="class",
        class_names=("a", "b", "c", "d"),
        split=make_split(n),
        provenance={"source": "npz"},
    )


def test_regression_round_trip(tmp_path):
    data = _regression()
    path = data.save(tmp_path / "prepared.npz")
    with np.load(path, allow_pickle=False) as npz:  # no pickles inside
        assert npz["x"].dtype == np.float32 and npz["split"].dtype == np.int8
        assert json.loads(str(npz["provenance"]))["nested"] == {"a": [1, 2]}
    back = PreparedData.load(path)
    np.testing.assert_array_equal(back.x, data.x)
    np.testing.assert_array_equal(back.y, data.y)
    np.testing.assert_array_equal(back.targets, data.targets)
    np.testing.assert_array_equal(back.coarse, data.coarse)
    np.testing.assert_array_equal(back.split, data.split)
    assert back.y.dtype == np.float32
    assert back.target_names == data.target_names and back.target == "toughness"
    assert back.class_names == () and back.provenance == data.provenance
    assert back.out_dim == 1 and back.in_channels == 1 and back.input_shape == (1, 32, 80)


def test_classification_round_trip_and_indices(tmp_path):
    data = _classification()
    back = PreparedData.load(data.save(tmp_path / "p.npz"))
    assert back.y.dtype == np.int64 and back.coarse is None
    assert back.class_names == ("a", "b", "c", "d") and back.out_dim == 4
    assert back.targets.shape == (30, 0)
    n = back.n
    idx = [back.search_train_index, back.search_val_index, back.test_index]
    assert sum(len(i) for i in idx) == n and len(np.unique(np.concatenate(idx))) == n
    np.testing.assert_array_equal(back.train_index, np.sort(np.concatenate(idx[:2])))
    assert len(back.test_index) == 6


def test_load_missing_and_corrupt(tmp_path):
    with pytest.raises(PreparedDataError, match="does not exist"):
        PreparedData.load(tmp_path / "nope.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(PreparedDataError, match="corrupt"):
        PreparedData.load(bad)
    partial = tmp_path / "partial.npz"
    np.savez(partial, x=np.zeros((2, 1, 2, 2)))
    with pytest.raises(PreparedDataError, match="lacks"):
        PreparedData.load(partial)
    truncated = tmp_path / "trunc.npz"
    good = _regression().save(tmp_path / "good.npz").read_bytes()
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(PreparedDataError):
        PreparedData.load(truncated)


def test_inconsistent_data_is_refused(tmp_path):
    with pytest.raises(PreparedDataError, match="x has"):
        PreparedData(x=np.zeros((3, 1, 2, 2)), y=np.zeros(4), task="regression")
    with pytest.raises(PreparedDataError, match="labels must lie"):
        PreparedData(x=np.zeros((2, 1, 2, 2)), y=[0, 5], task="classification", class_names=("a", "b"))
    with pytest.raises(PreparedDataError, match="task"):
        PreparedData(x=np.zeros((2, 1, 2, 2)), y=[0, 1], task="ranking")
    nosplit = PreparedData(x=np.zeros((2, 1, 2, 2)), y=[0.0, 1.0], task="regression")
    with pytest.raises(PreparedDataError, match="split"):
        nosplit.test_index
    with pytest.raises(PreparedDataError, match="split"):
        nosplit.save(tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()
