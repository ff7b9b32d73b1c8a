"""The DARTS paper's selection step: each search seed's cell trains briefly on search-train and is scored on
search-val (never the test set); the best cell goes to every final training."""

from __future__ import annotations

import json

import numpy as np

from workflow_lib.config import StageConfig, load_config, stage_document
from workflow_lib.darts.genotypes import GENOTYPES, Genotype
from workflow_lib.darts.selection import select_cell
from workflow_lib.datasets.prepared import PreparedData
from workflow_lib.workflow.targets import Layout, RuleInputs


def data():
    rng = np.random.default_rng(0)
    x = rng.random((30, 1, 8, 8), dtype=np.float32)
    return PreparedData(x=x, y=(x[:, 0, :4].mean(axis=(1, 2)) > 0.5).astype(np.int64), task="classification",
                        class_names=("a", "b"), split=np.array([0, 1, 2] * 10, np.int8))


def config():
    return load_config({"seeds": [0, 1], "datasets": {"d": {
        "kind": "digits", "selection": {"enabled": True, "epochs": 1, "max_steps_per_epoch": 2},
        "train": {"C": 4, "layers": 3, "batch_size": 8, "auxiliary": False}}}})


def test_selection_scores_on_search_val_and_picks_the_best(tmp_path, monkeypatch):
    import workflow_lib.darts.selection as selection

    seen = []
    real_fit = selection.fit

    def spy(build, data, schedule, train_index, eval_index, *args, **kwargs):
        seen.append((list(train_index), list(eval_index)))
        return real_fit(build, data, schedule, train_index, eval_index, *args, **kwargs)

    monkeypatch.setattr(selection, "fit", spy)
    prepared = data()
    stage = StageConfig.from_dict(stage_document(config(), "d", "select_cell"))
    document = select_cell(stage, prepared, {0: "DARTS_V2", 1: "KIRIGAMI_2019"}, tmp_path, tmp_path / "ckpt")
    assert all(t == list(prepared.search_train_index) and e == list(prepared.search_val_index) for t, e in seen)
    best = max(document["candidates"], key=lambda c: (c["val_metric"], -c["seed"]))
    assert document["selected_seed"] == best["seed"] and document["scored_on"] == "search_val"
    winner = Genotype.load(tmp_path / "selected_genotype.json")
    assert winner == GENOTYPES["DARTS_V2" if best["seed"] == 0 else "KIRIGAMI_2019"]
    assert json.loads((tmp_path / "selection.json").read_text())["epochs"] == 1


def test_every_final_training_uses_the_selected_cell():
    cfg = config()
    rules = RuleInputs(cfg, Layout.from_config(cfg))

    class W:
        dataset, seed = "d", "1"

    assert rules.train_genotype(W) == "results/d/search/selection/selected_genotype.json"
    assert rules.search_genotypes(W) == ["results/d/search/seed0/genotype.json", "results/d/search/seed1/genotype.json"]
