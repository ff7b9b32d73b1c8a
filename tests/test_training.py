"""Final training of the DARTS evaluation network: artifacts, determinism, kill + resume."""

import csv
import json

import numpy as np
import pytest

from workflow_lib.config import StageConfig
from workflow_lib.datasets.prepared import PreparedData
from workflow_lib.training import run_training
from workflow_lib.training import fitting as run_module




TRAIN = {"epochs": 3, "batch_size": 8, "C": 4, "layers": 3, "lr": 0.05, "lr_min": 0.0, "auxiliary": True,
         "auxiliary_weight": 0.4, "drop_path_prob": 0.2, "cutout_length": 0, "max_steps_per_epoch": 2}


def tiny_data(task="regression", n=40, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.random((n, 1, 8, 8)) > 0.5).astype(np.float32)
    split = np.array([0, 1, 2, 0, 1] * (n // 5), dtype=np.int8)
    if task == "regression":
        y = x[:, 0, :4].mean(axis=(1, 2)) * 2.0 + 0.5
        return PreparedData(x=x, y=y, task="regression", target="t", split=split,
                            coarse=rng.integers(0, 3, (n, 3, 5)))
    y = (x[:, 0, :, :4].sum(axis=(1, 2)) > 16).astype(np.int64) + (x[:, 0, 0, 0] > 0)
    return PreparedData(x=x, y=y, task="classification", class_names=("a", "b", "c"), split=split)


def stage(settings, name="train"):
    return StageConfig.from_dict({"dataset": "tiny", "kind": "npz", "stage": name, "device": {"type": "cpu"},
                                  "settings": settings})


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_run_training_artifacts(tmp_path, task):
    data = tiny_data(task)
    doc = run_training(stage(TRAIN), data, "DARTS_V2", tmp_path / "out", tmp_path / "ckpt", seed=0)
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["method"] == "darts" and saved["dataset"] == "tiny" and saved["seed"] == 0
    assert saved["task"] == task and saved["epochs"] == 3 and saved["device"] == "cpu"
    assert saved["genotype"]["normal_concat"] == [2, 3, 4, 5]
    assert saved["parameters"] > 0 and saved["train_seconds"] > 0
    expected = {"r2", "mae", "rmse", "loss"} if task == "regression" else {"accuracy", "loss"}
    assert set(saved["test"]) == expected
    assert saved["run_info"]["seed"] == 0 and saved["config"]["C"] == 4
    assert doc["test"] == saved["test"]
    curves = list(csv.DictReader(open(tmp_path / "out" / "curves.csv")))
    assert [r["epoch"] for r in curves] == ["1", "2", "3"]
    assert float(curves[0]["lr"]) == pytest.approx(0.05)
    preds = list(csv.DictReader(open(tmp_path / "out" / "predictions.csv")))
    assert [int(r["index"]) for r in preds] == data.test_index.tolist()
    assert (tmp_path / "ckpt" / "ckpt.pt").exists()


def test_kill_and_resume_matches_uninterrupted(tmp_path, monkeypatch):
    data = tiny_data("regression")
    st = stage(TRAIN)
    full = run_training(st, data, "DARTS_V2", tmp_path / "a", tmp_path / "ca", seed=1)

    real = run_module.train_epoch
    calls = {"n": 0}

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(run_module, "train_epoch", dying)
    with pytest.raises(KeyboardInterrupt):
        run_training(st, data, "DARTS_V2", tmp_path / "b", tmp_path / "cb", seed=1)
    assert not (tmp_path / "b" / "metrics.json").exists()
    monkeypatch.setattr(run_module, "train_epoch", real)
    resumed = run_training(st, data, "DARTS_V2", tmp_path / "b", tmp_path / "cb", seed=1)
    assert not list((tmp_path / "cb").glob("*.unusable"))  # resumed: the safe loader read the checkpoint
    assert resumed["test"] == full["test"]
    assert (tmp_path / "a" / "predictions.csv").read_text() == (tmp_path / "b" / "predictions.csv").read_text()
    drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    ca = drop(csv.DictReader(open(tmp_path / "a" / "curves.csv")))
    cb = drop(csv.DictReader(open(tmp_path / "b" / "curves.csv")))
    assert ca == cb


def test_same_seed_same_result_and_cutout(tmp_path):
    data = tiny_data("classification")
    settings = {**TRAIN, "epochs": 1, "cutout_length": 4}
    a = run_training(stage(settings), data, "DARTS_V1", tmp_path / "a", tmp_path / "ca", seed=3)
    b = run_training(stage(settings), data, "DARTS_V1", tmp_path / "b", tmp_path / "cb", seed=3)
    assert a["test"] == b["test"]


def test_genotype_from_config_name(tmp_path):
    data = tiny_data("regression")
    settings = {**TRAIN, "epochs": 1, "genotype": "KIRIGAMI_2019"}
    doc = run_training(stage(settings), data, None, tmp_path / "o", tmp_path / "c", seed=0)
    from workflow_lib.darts import GENOTYPES

    assert doc["genotype"] == GENOTYPES["KIRIGAMI_2019"].to_dict()
    with pytest.raises(ValueError, match="no genotype"):
        run_training(stage({**TRAIN, "epochs": 1}), data, None, tmp_path / "o2", tmp_path / "c2", seed=0)


def test_train_step_genotype_precedence(tmp_path):
    from workflow_lib.baselines import baseline_step
    from workflow_lib.darts import GENOTYPES
    from workflow_lib.training import train_step

    path = tiny_data("regression").save(tmp_path / "prepared.npz")
    GENOTYPES["DARTS_V1"].save(tmp_path / "genotype.json")
    settings = {**TRAIN, "epochs": 1}
    doc = train_step(stage(settings), path, tmp_path / "genotype.json", tmp_path / "o1", tmp_path / "c1", 0)
    assert doc["genotype"] == GENOTYPES["DARTS_V1"].to_dict()
    named = {**settings, "genotype": "DARTS_V2"}  # a named genotype in the config wins
    doc = train_step(stage(named), path, tmp_path / "genotype.json", tmp_path / "o2", tmp_path / "c2", 0)
    assert doc["genotype"] == GENOTYPES["DARTS_V2"].to_dict()
    with pytest.raises(ValueError, match="no --genotype"):
        train_step(stage(settings), path, None, tmp_path / "o3", tmp_path / "c3", 0)
    rf = baseline_step("random_forest", stage({"n_estimators": 3}, "random_forest"), path, tmp_path / "rf",
                       tmp_path / "crf", 0)
    assert rf["method"] == "random_forest" and (tmp_path / "rf" / "metrics.json").exists()
