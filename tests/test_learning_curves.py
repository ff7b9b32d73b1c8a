"""Learning curves: subset sizes, nested seeded subsets, the full test split at every point, outputs."""

import csv
import io
import json

import numpy as np
import pytest

from workflow_lib.datasets.prepared import PreparedData
from workflow_lib.design.config import LearningCurvesConfig
from workflow_lib.learning_curves import (capped, learning_curve_step, point_data, resolve_sizes,
                                          training_subset)
from workflow_lib.report import design_figures


def tiny_data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.random((n, 1, 8, 8)) > 0.5).astype(np.float32)
    coarse = rng.integers(0, 2, (n, 3, 5))
    y = coarse.reshape(n, -1)[:, :5].mean(axis=1) + x[:, 0, :2].mean(axis=(1, 2))
    split = np.array([0, 1, 2, 0, 1] * (n // 5), dtype=np.int8)
    return PreparedData(x=x, y=y, task="regression", target="t", split=split, coarse=coarse)


def test_sizes_all_and_skipped():
    assert resolve_sizes([250, "all", 10, 5000, 48], 48) == ([10, 48], [250, 5000])


def test_subsets_are_seeded_nested_and_from_the_training_split():
    data = tiny_data()
    train = data.train_index
    small, large = training_subset(train, 10, 3), training_subset(train, 20, 3)
    assert len(small) == 10 and len(set(small)) == 10 and set(small) <= set(large) <= set(train)
    assert np.array_equal(small, training_subset(train, 10, 3))
    assert not np.array_equal(small, training_subset(train, 10, 4))
    assert np.array_equal(training_subset(train, len(train), 3), train)


def test_every_point_tests_on_the_full_test_split():
    data = tiny_data()
    for n in (5, 20, len(data.train_index)):
        point = point_data(data, training_subset(data.train_index, n, 0))
        assert len(point.train_index) == n
        assert np.array_equal(point.y[point.test_index], data.y[data.test_index])
        assert np.array_equal(point.x[point.test_index], data.x[data.test_index])


def test_budget_caps():
    cfg = LearningCurvesConfig(enabled=True, seeds=None, methods=["tiny_resnet"], sizes=["all"], max_epochs=2,
                               max_steps_per_epoch=3)
    assert capped({"epochs": 10, "max_steps_per_epoch": None, "lr": 0.1}, cfg) == {
        "epochs": 2, "max_steps_per_epoch": 3, "lr": 0.1}
    assert capped({"epochs": 1, "max_steps_per_epoch": 2}, cfg) == {"epochs": 1, "max_steps_per_epoch": 2}


def test_learning_curve_step(tmp_path):
    data = tiny_data()
    data.save(tmp_path / "prepared.npz")
    settings = {
        "learning_curves": {"enabled": True, "seeds": None, "methods": ["random_forest", "tiny_resnet"],
                            "sizes": [6, 12, "all", 500], "max_epochs": 1, "max_steps_per_epoch": 1},
        "random_forest": {"n_estimators": 5, "max_depth": None, "min_samples_leaf": 1, "max_features": 1.0,
                          "n_jobs": 1},
        "tiny_resnet": {"epochs": 4, "batch_size": 8, "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4,
                        "grad_clip": 5.0, "cutout_length": 0, "max_steps_per_epoch": None},
    }
    document = learning_curve_step("tiny", "npz", settings, tmp_path / "prepared.npz", None, tmp_path / "out",
                                   tmp_path / "work", [0, 1], threads=1)
    n_train = len(data.train_index)
    assert document["sizes"] == [6, 12, n_train] and document["skipped_sizes"] == [500]
    assert document["method_settings"]["tiny_resnet"]["epochs"] == 1
    assert len(document["points"]) == 3 * 2 * 2
    for p in document["points"]:
        assert p["metric"] == "r2" and np.isfinite(p["value"])
        work = tmp_path / "work" / p["method"] / f"n{p['n_train']}" / f"seed{p['seed']}"
        with open(work / "predictions.csv") as handle:
            assert len(list(csv.DictReader(handle))) == len(data.test_index)  # always the full test split
    assert json.loads((tmp_path / "out" / "learning_curves.json").read_text())["points"] == document["points"]
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "learning_curves.csv").read_text())))
    assert list(rows[0]) == ["method", "n_train", "seed", "metric", "value", "seconds"] and len(rows) == 12
    assert design_figures.learning_curves(document).startswith(b"\x89PNG")


def test_unknown_method_is_named():
    with pytest.raises(ValueError, match="resnet50"):
        LearningCurvesConfig.from_dict({"enabled": True, "seeds": None, "methods": ["resnet50"], "sizes": ["all"],
                                        "max_epochs": None, "max_steps_per_epoch": None})
