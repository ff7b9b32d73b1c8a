"""BASELINES on a tiny synthetic PreparedData, both tasks: artifacts, determinism per seed, resume."""

import csv
import json

import numpy as np
import pytest

from workflow_lib.baselines import BASELINES, run_baseline
from workflow_lib.baselines import random_search as rs
from workflow_lib.baselines.random_forest import features
from workflow_lib.config import StageConfig
from workflow_lib.datasets.prepared import PreparedData




CNN = {"epochs": 1, "batch_size": 8, "lr": 0.05, "max_steps_per_epoch": 1}
SETTINGS = {
    "random_forest": {"n_estimators": 5, "n_jobs": 1},
    "resnet18": CNN,
    "tiny_resnet": {**CNN, "epochs": 2, "max_steps_per_epoch": 2, "cutout_length": 3},
    "random_search": {
        "random_search": {"num_candidates": 2, "candidate_epochs": 1, "C": 4, "layers": 3, "batch_size": 8,
                          "max_steps_per_epoch": 1},
        "train": {"epochs": 1, "batch_size": 8, "C": 4, "layers": 3, "auxiliary": True, "cutout_length": 0,
                  "max_steps_per_epoch": 1},
    },
    "fixed_cell": {
        "fixed_cell": {"genotype": "KIRIGAMI_2019"},
        "train": {"epochs": 1, "batch_size": 8, "C": 4, "layers": 3, "auxiliary": False, "max_steps_per_epoch": 2},
    },
}


def tiny_data(task, n=30, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.random((n, 1, 8, 8)) > 0.5).astype(np.float32)
    split = np.array([0, 1, 2, 0, 1] * (n // 5), dtype=np.int8)
    if task == "regression":
        coarse = rng.integers(0, 3, (n, 3, 5))
        y = coarse.reshape(n, -1)[:, :5].mean(axis=1) + x[:, 0, :2].mean(axis=(1, 2))
        return PreparedData(x=x, y=y, task="regression", target="t", split=split, coarse=coarse)
    y = rng.integers(0, 3, n)
    return PreparedData(x=x, y=y, task="classification", class_names=("a", "b", "c"), split=split)


def stage(name, settings):
    return StageConfig.from_dict({"dataset": "tiny", "kind": "npz", "stage": name, "device": {"type": "cpu"},
                                  "settings": settings})


@pytest.mark.parametrize("task", ["regression", "classification"])
@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baseline_artifacts_and_determinism(tmp_path, name, task):
    data = tiny_data(task)
    st = stage(name, SETTINGS[name])
    a = run_baseline(name, st, data, tmp_path / "a", tmp_path / "ca", seed=0)
    saved = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert saved["method"] == name and saved["task"] == task and saved["seed"] == 0
    assert set(saved["test"]) == ({"r2", "mae", "rmse", "loss"} if task == "regression" else {"accuracy", "loss"})
    assert saved["parameters"] > 0 and saved["train_seconds"] >= 0 and "run_info" in saved
    curves = list(csv.DictReader(open(tmp_path / "a" / "curves.csv")))
    assert len(curves) == saved["epochs"] >= 1
    preds = list(csv.DictReader(open(tmp_path / "a" / "predictions.csv")))
    assert [int(r["index"]) for r in preds] == data.test_index.tolist()
    if name == "random_search":
        cands = json.loads((tmp_path / "a" / "candidates.json").read_text())
        assert len(cands["candidates"]) == 2 and saved["genotype"] == cands["candidates"][cands["best"]]["genotype"]
        assert all(c["seconds"] >= 0 for c in cands["candidates"])
        assert cands["budget"]["candidate_epochs_total"] == 2 * cands["budget"]["candidate_epochs"]
    # same seed, fresh directories -> identical metrics
    b = run_baseline(name, st, data, tmp_path / "b", tmp_path / "cb", seed=0)
    assert a["test"] == b["test"] and a["parameters"] == b["parameters"]
    assert (tmp_path / "a" / "predictions.csv").read_text() == (tmp_path / "b" / "predictions.csv").read_text()


def test_cnn_parameter_counts_published():
    data = tiny_data("regression")
    from workflow_lib.models import build_model, count_parameters

    assert count_parameters(build_model("tiny_resnet", data.in_channels, data.out_dim)) == 77_273
    assert count_parameters(build_model("resnet18", data.in_channels, data.out_dim)) == 11_168_193


def test_random_forest_features():
    reg = tiny_data("regression")
    assert features(reg).shape == (30, 15)  # the coarse 3x5 pattern when present
    assert features(tiny_data("classification")).shape == (30, 64)  # else flattened pixels


def test_random_search_sampling():
    from workflow_lib.darts import PRIMITIVES

    a = rs.sample_genotypes(20, seed=4)
    assert [g.to_dict() for g in a[:5]] == [g.to_dict() for g in rs.sample_genotypes(5, seed=4)]
    assert a[0].to_dict() != rs.sample_genotypes(1, seed=5)[0].to_dict()
    ops = set()
    for g in a:
        for cell in (g.normal, g.reduce):
            assert len(cell) == 8
            for k in range(4):
                (op1, i1), (op2, i2) = cell[2 * k], cell[2 * k + 1]
                assert i1 != i2 and 0 <= i1 <= k + 1 and 0 <= i2 <= k + 1
                ops.update((op1, op2))
        assert list(g.normal_concat) == [2, 3, 4, 5]
    assert ops == set(PRIMITIVES) - {"none"}


def test_random_search_resumes_finished_candidates(tmp_path, monkeypatch):
    data = tiny_data("regression")
    st = stage("random_search", SETTINGS["random_search"])
    first = run_baseline("random_search", st, data, tmp_path / "a", tmp_path / "ca", seed=2)
    record = json.loads((tmp_path / "ca" / "candidates.json").read_text())
    assert len(record["candidates"]) == 2

    def no_training(*args, **kwargs):
        raise AssertionError("finished candidates must not be retrained")

    real_fit = rs.fit
    monkeypatch.setattr(rs, "fit", no_training)
    again = run_baseline("random_search", st, data, tmp_path / "a", tmp_path / "ca", seed=2)
    assert again["test"] == first["test"]
    monkeypatch.setattr(rs, "fit", real_fit)


@pytest.mark.parametrize(("search_epochs", "match", "expected"), [(50, True, 6), (3, True, 2), (1, True, 1),
                                                                   (50, False, 5), (None, True, 5)])
def test_random_search_budget_matches_the_search(search_epochs, match, expected):
    """Li & Talwalkar compare at equal budget: the candidates share the search's epochs."""
    from workflow_lib.config.types import RandomSearchConfig, matched_candidate_epochs

    cfg = RandomSearchConfig.from_dict({"num_candidates": 8 if search_epochs == 50 else 2, "candidate_epochs": 5,
                                        "match_search_budget": match})
    assert matched_candidate_epochs(cfg, search_epochs) == expected
