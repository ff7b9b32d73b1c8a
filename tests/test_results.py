"""results: atomic writers and the over-seeds summary."""

import csv
import json

import numpy as np
import pytest

from workflow_lib.results import summarise, write_curves, write_metrics, write_predictions, write_summary


def test_writers(tmp_path):
    write_metrics(tmp_path / "m" / "metrics.json", {"a": np.float32(1.5), "b": float("nan"), "c": np.int64(3)})
    doc = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert doc == {"a": 1.5, "b": None, "c": 3}
    write_curves(tmp_path / "curves.csv", [{"epoch": 1, "train_loss": 0.5, "lr": None, "seconds": 1.0}])
    rows = list(csv.reader(open(tmp_path / "curves.csv")))
    assert rows[0] == ["epoch", "train_loss", "train_metric", "test_loss", "test_metric", "lr", "seconds"]
    assert rows[1] == ["1", "0.5", "", "", "", "", "1.0"]
    write_predictions(tmp_path / "p.csv", [4, 7], np.array([1.0, 2.0]), np.array([1.5, 2.5]))
    assert (tmp_path / "p.csv").read_text() == "index,y_true,y_pred\n4,1.0,1.5\n7,2.0,2.5\n"
    with pytest.raises(ValueError):
        write_predictions(tmp_path / "q.csv", [1], [1.0, 2.0], [1.0])
    assert not (tmp_path / "q.csv").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


def _metrics(tmp_path, method, seed, r2, seconds, params=100):
    path = tmp_path / method / f"seed{seed}" / "metrics.json"
    write_metrics(path, {"method": method, "dataset": "d", "seed": seed, "task": "regression", "parameters": params,
                         "train_seconds": seconds, "test": {"r2": r2, "mae": 1.0, "rmse": 2.0, "loss": 0.1}})
    return path


def test_summary(tmp_path):
    paths = [_metrics(tmp_path, "rf", 1, 0.8, 2.0), _metrics(tmp_path, "rf", 0, 0.9, 4.0),
             _metrics(tmp_path, "darts", 0, 0.95, 10.0, params=50)]
    doc = summarise("d", paths)
    rf = doc["methods"]["rf"]
    assert rf["seeds"] == [0, 1] and rf["n_seeds"] == 2 and rf["parameters"] == 100
    assert rf["test"]["r2"]["mean"] == pytest.approx(0.85)
    assert rf["test"]["r2"]["std"] == pytest.approx(np.std([0.8, 0.9], ddof=1))
    assert rf["train_seconds"]["mean"] == pytest.approx(3.0)
    assert doc["methods"]["darts"]["test"]["r2"]["std"] == 0.0
    write_summary(tmp_path / "summary.json", "d", paths)
    assert json.loads((tmp_path / "summary.json").read_text())["methods"]["darts"]["parameters"] == 50
    with pytest.raises(ValueError, match="duplicate seeds"):
        summarise("d", paths + [paths[0]])


def test_summary_holds_the_search_advantage(tmp_path):
    """With each seed's advantage.json the summary carries search_advantage (results.advantage.summary_block)."""
    from workflow_lib.results.advantage import compare

    paths = [_metrics(tmp_path, "darts", 0, 0.95, 10.0)]
    assert "search_advantage" not in summarise("d", paths)
    advantage = tmp_path / "advantage.json"
    scores = [0.90, 0.96, 0.93, 0.91, 0.94, 0.92, 0.89, 0.97]
    write_metrics(advantage, {"seed": 0, "found": {"score": 0.95}, "random": [{"score": s} for s in scores],
                              "protocol": {"epochs": 3}, **compare(0.95, scores)})
    block = write_summary(tmp_path / "summary.json", "d", paths, [advantage])["search_advantage"]
    assert block["beaten"] == 6 and block["n"] == 8 and block["percentile"] == 75.0
    assert block["random_scores"] == scores and block["found_score"] == 0.95 and block["protocol"] == {"epochs": 3}
    assert block["relative_improvement"] == pytest.approx(100 * (0.95 - np.mean(scores)) / np.mean(scores))
