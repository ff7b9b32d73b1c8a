"""The DARTS search run: artifacts, determinism per seed, bitwise-identical resume after a kill."""

import json

import numpy as np
import pytest
import torch

from workflow_lib.config import StageConfig, load_config
from workflow_lib.config.stage import stage_document
from workflow_lib.darts import Genotype, PRIMITIVES
from workflow_lib.darts.search_run import SearchRun, run_search
from workflow_lib.datasets.prepared import PreparedData
from workflow_lib.engine import EpochLoop


def tiny_data(task: str, n: int = 48) -> PreparedData:
    rng = np.random.default_rng(0)
    x = rng.random((n, 1, 8, 16), dtype=np.float32)
    y = x.mean(axis=(1, 2, 3)) * 3.0 if task == "regression" else (x.mean(axis=(1, 2, 3)) > 0.5).astype(np.int64)
    split = np.array([0, 1, 2] * (n // 3), dtype=np.int8)
    names = ("low", "high") if task == "classification" else ()
    targets = ("t",) if task == "regression" else ()
    return PreparedData(x=x, y=y, task=task, target="t", split=split, class_names=names, target_names=targets)


def tiny_stage(order: str = "first", epochs: int = 2, **search) -> StageConfig:
    search = {"epochs": epochs, "batch_size": 8, "C": 2, "layers": 3, "order": order, "max_steps_per_epoch": 2,
              "diagnostics": {"hessian_max_iterations": 4}, **search}
    config = load_config({"datasets": {"toy": {"kind": "digits", "search": search}}})
    return StageConfig.from_dict(stage_document(config, "toy", "search"))


@pytest.mark.parametrize("task", ["regression", "classification"])
@pytest.mark.parametrize("order", ["first", "second"])
def test_search_writes_artifacts(tmp_path, task, order):
    run_search(tiny_stage(order), tiny_data(task), tmp_path / "out", tmp_path / "ckpt", seed=0)
    out = tmp_path / "out"
    genotype = Genotype.load(out / "genotype.json")
    assert len(genotype.normal) == 8 and len(genotype.reduce) == 8
    history = json.loads((out / "history.json").read_text())
    assert history["primitives"] == list(PRIMITIVES)
    assert [row["epoch"] for row in history["epochs"]] == [1, 2]
    assert history["metric"] == ("r2" if task == "regression" else "accuracy")
    row = history["epochs"][-1]
    assert len(row["entropy_normal"]) == 14 and 0 <= row["skip_count_normal"] <= 8
    assert Genotype.from_dict(row["genotype"]).to_dict() == genotype.to_dict()
    alphas = np.load(out / "alphas.npz")
    assert alphas["normal"].shape == (3, 14, 8) and alphas["reduce"].shape == (3, 14, 8)
    np.testing.assert_allclose(alphas["normal"].sum(axis=-1), 1.0, rtol=1e-6)
    # The paper initialises alphas at 1e-3 * randn: the softmax weights start at 1/8.
    np.testing.assert_allclose(alphas["normal"][0], 1 / 8, atol=1e-3)
    assert not np.array_equal(alphas["normal"][0], alphas["normal"][-1])
    # diagnostics: the eigenvalue at epochs 1 and 2 (every 2nd from the first, and the last), stability, margins
    assert [e["hessian_eigenvalue"] is not None for e in history["epochs"]] == [True, True]
    assert all(0 < e["hessian_iterations"] <= 8 and e["hessian_seconds"] > 0 for e in history["epochs"])
    assert history["budget"]["hessian_evaluations"] == 2 and history["budget"]["hessian_seconds"] > 0
    assert len(row["logit_margin_normal"]) == 14 and len(row["weight_margin_reduce"]) == 14
    assert row["logit_margin_max_normal"] == max(row["logit_margin_normal"]) >= row["logit_margin_median_normal"]
    assert row["arch_steps"] == 4 and row["max_logit_drift"] == pytest.approx(3e-4 * 4)
    assert 0 <= row["stable_epochs_normal"] <= 2 and 0 <= row["last_change_epoch"] <= 2
    assert (history["stop_rule"], history["stop_reason"], history["stop_epoch"], history["epochs_run"]) == (
        None, "max_epochs", 2, 2)
    assert isinstance(history["conclusive"], bool) and history["conclusive_reason"].startswith(
        "conclusive" if history["conclusive"] else "not conclusive")
    info = json.loads((out / "run_info.json").read_text())
    assert info["seed"] == 0 and "torch" in info["versions"] and info["config"]["stage"] == "search"
    # the proxy task is recorded beside the genotype (issue: resolution and stem stride in the run info)
    assert info["proxy"] == {"input_shape": [1, 8, 16], "input_stride": [1, 1], "stem_stride": 1,
                             "search_train_samples": 16, "search_val_samples": 16}
    assert (out / "supernet.pt").exists()


def _final_state(tmp_path, name, epochs_first=None):
    stage, data = tiny_stage(epochs=3), tiny_data("regression")
    if epochs_first is not None:  # a run killed after `epochs_first` epochs, then restarted from scratch objects
        run = SearchRun(stage, data, seed=1)
        EpochLoop(tmp_path / name / "ckpt.pt", run.components(), 3).run(run.epoch, stop_after=epochs_first)
    run = SearchRun(stage, data, seed=1)
    loop = EpochLoop(tmp_path / name / "ckpt.pt", run.components(), 3)
    history = loop.run(run.epoch)
    # every component's state (architect, scheduler, batches, ...) came back through the safe loader
    assert loop.resumed_from == (epochs_first or 0)
    clock = ("seconds", "hessian_seconds")  # wall-clock times differ between runs
    return run.model.state_dict(), [{k: v for k, v in r.items() if k not in clock} for r in history]


def test_resume_after_kill_is_bitwise_identical(tmp_path):
    straight, straight_history = _final_state(tmp_path, "straight")
    resumed, resumed_history = _final_state(tmp_path, "resumed", epochs_first=1)
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key
    assert straight_history == resumed_history


def test_same_seed_same_result_different_seed_differs(tmp_path):
    def genotype_and_alphas(seed, name):
        run_search(tiny_stage(), tiny_data("classification"), tmp_path / name, tmp_path / f"{name}_ckpt", seed)
        return np.load(tmp_path / name / "alphas.npz")["normal"]

    a, b, c = genotype_and_alphas(3, "a"), genotype_and_alphas(3, "b"), genotype_and_alphas(4, "c")
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_pc_darts_search_records_edge_weights_and_warms_up(tmp_path):
    config = load_config({"datasets": {"toy": {"kind": "digits", "search": {
        "method": "pc_darts", "pc_k": 2, "arch_warmup_epochs": 1, "epochs": 2, "batch_size": 8, "C": 4,
        "layers": 3, "max_steps_per_epoch": 2, "diagnostics": {"hessian_max_iterations": 3}}}}})
    run_search(StageConfig.from_dict(stage_document(config, "toy", "search")), tiny_data("regression"),
               tmp_path / "out", tmp_path / "ckpt", seed=0)
    history = json.loads((tmp_path / "out" / "history.json").read_text())
    assert history["method"] == "pc_darts"
    assert [e["alphas_updated"] for e in history["epochs"]] == [False, True]
    alphas = np.load(tmp_path / "out" / "alphas.npz")
    assert alphas["edges_normal"].shape == (3, 14) and alphas["edges_reduce"].shape == (3, 14)
    np.testing.assert_array_equal(alphas["normal"][0], alphas["normal"][1])  # warm-up: the alphas stand still
    assert not np.array_equal(alphas["normal"][1], alphas["normal"][2])
    assert history["budget"]["samples_seen"] == 2 * 8 + 2 * 16  # warm-up steps read no search-val batch


def _search_result(tmp_path, name, **search):
    stage = tiny_stage(epochs=3, **search)
    run_search(stage, tiny_data("classification"), tmp_path / name, tmp_path / f"{name}_ckpt", seed=2)
    out = tmp_path / name
    state = torch.load(out / "supernet.pt", weights_only=True)
    history = json.loads((out / "history.json").read_text())
    return np.load(out / "alphas.npz"), state, json.loads((out / "genotype.json").read_text()), history


@pytest.mark.parametrize("search", [{"order": "second"}, {"method": "pc_darts", "pc_k": 2, "C": 4}])
def test_the_hessian_diagnostic_changes_nothing_the_search_computes(tmp_path, search):
    """Bitwise: the same alphas, weights, BN buffers, cell and curves with the eigenvalue at every epoch as
    without it (it restores BN buffers, never touches the optimisers, the weights or the global RNG)."""
    on = _search_result(tmp_path, "on", diagnostics={"hessian_every": 1, "hessian_max_iterations": 3}, **search)
    off = _search_result(tmp_path, "off", diagnostics={"hessian_every": 0}, **search)
    for key in ("normal", "reduce"):
        assert np.array_equal(on[0][key], off[0][key])
    assert on[1].keys() == off[1].keys()
    for key in on[1]:
        assert torch.equal(on[1][key], off[1][key]), key
    assert on[2] == off[2]
    skip = ("seconds", "hessian_eigenvalue", "hessian_iterations", "hessian_seconds", "hessian_converged")
    assert [{k: v for k, v in e.items() if k not in skip} for e in on[3]["epochs"]] == [
        {k: v for k, v in e.items() if k not in skip} for e in off[3]["epochs"]]
    assert all(e["hessian_eigenvalue"] is not None for e in on[3]["epochs"])
    assert all(e["hessian_eigenvalue"] is None for e in off[3]["epochs"])


def test_search_stops_by_stable_genotype_and_a_rerun_trains_no_further(tmp_path):
    """With a negligible architecture learning rate the derived cell never changes: stable_genotype (2 epochs)
    ends the 5-epoch search after epoch 2; running the step again resumes the stopped checkpoint, trains
    nothing and writes the same result."""
    search = {"epochs": 5, "alpha_lr": 1e-9, "diagnostics": {"hessian_every": 0},
              "stop": {"rule": "stable_genotype", "stable_genotype": {"stable_epochs": 2}}}
    stage, data = tiny_stage(**search), tiny_data("regression")
    run_search(stage, data, tmp_path / "out", tmp_path / "ckpt", seed=0)
    history = json.loads((tmp_path / "out" / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2]
    assert (history["stop_rule"], history["stop_epoch"], history["epochs_run"], history["max_epochs"]) == (
        "stable_genotype", 2, 2, 5)
    assert "has not changed for 2 epochs" in history["stop_reason"]
    assert history["conclusive"] and "stable_genotype rule stopped the search at epoch 2" in history[
        "conclusive_reason"]
    assert history["budget"]["epochs"] == 2 and history["budget"]["max_epochs"] == 5
    assert json.loads((tmp_path / "out" / "genotype.json").read_text()) == history["epochs"][1]["genotype"]
    assert json.loads((tmp_path / "out" / "run_info.json").read_text())["stop"]["stop_rule"] == "stable_genotype"
    assert np.load(tmp_path / "out" / "alphas.npz")["normal"].shape == (3, 14, 8)
    run_search(stage, data, tmp_path / "again", tmp_path / "ckpt", seed=0)
    rerun = json.loads((tmp_path / "again" / "history.json").read_text())
    assert rerun["epochs"] == history["epochs"] and rerun["stop_epoch"] == 2


def test_darts_es_end_to_end_returns_the_cell_of_the_stop_epoch(tmp_path):
    """A hair-trigger DARTS-ES (window 1, delta 1, factor 1e-6, from epoch 1): after epoch 2 the eigenvalue of
    epoch 2 is compared with that of epoch 1, the search ends, and the result is the cell of epoch 1."""
    search = {"epochs": 4, "diagnostics": {"hessian_every": 1, "hessian_max_iterations": 3},
              "stop": {"rule": "darts_es", "darts_es": {"window": 1, "delta": 1, "factor": 1e-6, "start_epoch": 1}}}
    run_search(tiny_stage(**search), tiny_data("regression"), tmp_path / "out", tmp_path / "ckpt", seed=0)
    history = json.loads((tmp_path / "out" / "history.json").read_text())
    assert all(e["hessian_eigenvalue"] > 0 for e in history["epochs"])
    assert (history["stop_rule"], history["stop_epoch"], history["epochs_run"]) == ("darts_es", 1, 2)
    assert json.loads((tmp_path / "out" / "genotype.json").read_text()) == history["epochs"][0]["genotype"]
    assert history["stop_details"]["ratio"] > 1e-6
