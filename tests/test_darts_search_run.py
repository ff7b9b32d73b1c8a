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


def tiny_stage(order: str = "first", epochs: int = 2) -> StageConfig:
    config = load_config({"datasets": {"toy": {"kind": "digits", "search": {
        "epochs": epochs, "batch_size": 8, "C": 2, "layers": 3, "order": order, "max_steps_per_epoch": 2}}}})
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
    return run.model.state_dict(), [{k: v for k, v in r.items() if k != "seconds"} for r in history]


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
        "layers": 3, "max_steps_per_epoch": 2}}}})
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
