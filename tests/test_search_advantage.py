"""The search advantage (Yang et al., ICLR 2020): the found cell against random cells of the same space.

The sampler is uniform over the DARTS space; the statistics match hand-worked numbers; the step writes
advantage.json with >= 8 random scores, resumes without retraining finished cells and is deterministic; and
no test-split score ever selects anything (search, selection and random search read search-val only).
"""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter

import numpy as np
import pytest
from scipy.stats import chisquare

from workflow_lib.baselines import random_search as rs
from workflow_lib.config import StageConfig, load_config, stage_document
from workflow_lib.darts import advantage as adv
from workflow_lib.darts.genotypes import PRIMITIVES, Genotype
from workflow_lib.datasets.prepared import PreparedData
from workflow_lib.results.advantage import compare, summary_block
from workflow_lib.workflow.targets import Layout, RuleInputs, runs_advantage

OPS = [p for p in PRIMITIVES if p != "none"]


def prepared(permute_test: bool = False) -> PreparedData:
    rng = np.random.default_rng(0)
    x = rng.random((60, 1, 8, 8), dtype=np.float32)
    y = x[:, 0, :4].mean(axis=(1, 2)) + 0.05 * rng.standard_normal(60)
    split = np.array([0, 1, 2] * 20, np.int8)
    if permute_test:
        test = np.flatnonzero(split == 2)
        y[test] = y[test][np.random.default_rng(1).permutation(len(test))]
    return PreparedData(x=x, y=y, task="regression", target="t", split=split)


def config(**advantage) -> dict:
    return load_config({"seeds": [0, 1], "datasets": {"d": {
        "kind": "digits",
        "search": {"epochs": 1, "batch_size": 8, "C": 2, "layers": 3, "max_steps_per_epoch": 2},
        "selection": {"enabled": True, "epochs": 1, "max_steps_per_epoch": 2},
        "search_advantage": {"epochs": 2, "max_steps_per_epoch": 2, "train_samples": 24, **advantage},
        "train": {"C": 4, "layers": 3, "batch_size": 8, "auxiliary": False, "epochs": 1,
                  "max_steps_per_epoch": 2},
        "baselines": {"random_search": {"num_candidates": 2, "candidate_epochs": 1, "C": 4, "layers": 3,
                                        "batch_size": 8, "max_steps_per_epoch": 2}}}}})


def stage(step: str, cfg: dict | None = None) -> StageConfig:
    return StageConfig.from_dict(stage_document(cfg or config(), "d", step))


# ------------------------------------------------------------------------------------------- sampler

def test_random_cells_are_uniform_over_the_space():
    """Per node k: the input pair uniform over the C(k+2, 2) pairs of distinct earlier states, and each
    input's op uniform over the 7 non-none primitives (chi-square on 3000 genotypes x 2 cell types)."""
    cells = [cell for g in adv.random_cells(3000, seed=0) for cell in (g.normal, g.reduce)]
    for k in range(4):
        pairs = Counter()
        ops = [Counter(), Counter()]  # the op of the node's first and of its second input
        for cell in cells:
            (op1, i1), (op2, i2) = cell[2 * k], cell[2 * k + 1]
            assert i1 != i2 and 0 <= min(i1, i2) and max(i1, i2) <= k + 1, (k, cell)
            pairs[tuple(sorted((i1, i2)))] += 1
            ops[0][op1] += 1
            ops[1][op2] += 1
        expected_pairs = list(itertools.combinations(range(k + 2), 2))
        assert set(pairs) == set(expected_pairs)
        if len(expected_pairs) > 1:  # node 0 has one pair: the two cell inputs
            assert chisquare([pairs[p] for p in expected_pairs]).pvalue > 1e-3, (k, pairs)
        for slot in ops:
            assert set(slot) == set(OPS)
            assert chisquare([slot[o] for o in OPS]).pvalue > 1e-3, (k, slot)
        inputs = Counter(i for cell in cells for _, i in cell[2 * k: 2 * k + 2])
        # each earlier state is an input with probability 2 / (k + 2)
        for source in range(k + 2):
            assert inputs[source] / len(cells) == pytest.approx(2 / (k + 2), abs=0.03)


def test_random_cells_are_reproducible_and_not_random_searchs_candidates():
    assert [g.to_dict() for g in adv.random_cells(8, 3)] == [g.to_dict() for g in adv.random_cells(8, 3)]
    for seed in range(4):
        mine = {json.dumps(g.to_dict()) for g in adv.random_cells(8, seed)}
        theirs = {json.dumps(g.to_dict()) for g in rs.sample_genotypes(8, seed)}
        assert not mine & theirs, seed
    assert all(list(g.normal_concat) == [2, 3, 4, 5] for g in adv.random_cells(8, 0))


# ---------------------------------------------------------------------------------------- statistics

def test_percentile_and_relative_improvement_hand_worked():
    # found 0.5 against [0.1, 0.5, 0.7, 0.3]: beats 0.1 and 0.3, ties 0.5 -> (2 + 0.5) / 4 = 62.5 %
    result = compare(0.5, [0.1, 0.5, 0.7, 0.3])
    assert (result["beaten"], result["ties"], result["n"]) == (2, 1, 4)
    assert result["percentile"] == 62.5
    assert result["random_mean"] == pytest.approx(0.4)
    assert result["random_std"] == pytest.approx(math.sqrt(0.2 / 3))  # sample std (ddof=1)
    assert result["relative_improvement"] == pytest.approx(25.0)      # 100 x (0.5 - 0.4) / 0.4
    assert result["z_score"] == pytest.approx(0.1 / math.sqrt(0.2 / 3))
    assert compare(0.9, [0.9] * 8)["percentile"] == 50.0              # all ties count half
    assert compare(0.2, [0.3, 0.4])["percentile"] == 0.0 and compare(0.2, [0.3, 0.4])["relative_improvement"] \
        == pytest.approx(100 * (0.2 - 0.35) / 0.35)
    assert compare(float("nan"), [0.1, 0.2])["beaten"] == 0          # a diverged cell ranks last
    assert compare(0.1, [float("nan"), 0.2])["beaten"] == 1
    assert compare(0.1, [-0.2, -0.1])["relative_improvement"] is None  # undefined for a mean R^2 <= 0
    # a mean R^2 within one spread of zero: the ratio would be noise (the default's short kirigami protocol)
    assert compare(-0.2, [-0.3, 0.5, -0.2, 0.1])["relative_improvement"] is None
    assert compare(0.5, [0.4, 0.4])["z_score"] is None                # no spread


def _document(seed, found, scores, protocol=None):
    return {"seed": seed, "found": {"score": found}, "random": [{"score": s} for s in scores],
            "protocol": protocol or {"epochs": 3}, **compare(found, scores)}


def test_summary_block_one_seed_and_pooled():
    one = summary_block([_document(0, 0.5, [0.1, 0.5, 0.7, 0.3])])
    assert set(one) == {"percentile", "random_scores", "found_score", "relative_improvement", "protocol",
                        "beaten", "n", "random_mean", "random_std"}
    assert one["percentile"] == 62.5 and one["random_scores"] == [0.1, 0.5, 0.7, 0.3] and one["found_score"] == 0.5
    pooled = summary_block([_document(1, 0.2, [0.3, 0.4]), _document(0, 0.5, [0.1, 0.5, 0.7, 0.3])])
    assert pooled["seeds"] == [0, 1] and [e["seed"] for e in pooled["per_seed"]] == [0, 1]
    assert pooled["beaten"] == 2 and pooled["n"] == 6
    assert pooled["percentile"] == pytest.approx(100 * 2.5 / 6)
    assert pooled["found_score"] == pytest.approx(0.35)
    assert pooled["random_scores"] == [0.1, 0.5, 0.7, 0.3, 0.3, 0.4]
    assert pooled["random_mean"] == pytest.approx(np.mean([0.1, 0.5, 0.7, 0.3, 0.3, 0.4]))
    assert pooled["relative_improvement"] == pytest.approx(100 * (0.35 - 2.3 / 6) / (2.3 / 6))


# ---------------------------------------------------------------------------------------- the step

def test_step_writes_resumes_without_retraining_and_is_deterministic(tmp_path, monkeypatch):
    data = prepared()
    st = stage("search_advantage")
    real_fit = adv.fit
    calls = []

    def killed_at_the_fourth_cell(*args, **kwargs):
        calls.append(kwargs["name"])
        if len(calls) == 4:
            raise KeyboardInterrupt("killed")
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(adv, "fit", killed_at_the_fourth_cell)
    with pytest.raises(KeyboardInterrupt):
        adv.run_advantage(st, data, "DARTS_V2", tmp_path / "a", tmp_path / "ca", seed=0)
    record = json.loads((tmp_path / "ca" / "cells.json").read_text())
    assert [c["name"] for c in record["cells"]] == ["found", "random0", "random1"]
    assert not (tmp_path / "a" / "advantage.json").exists()

    calls.clear()
    monkeypatch.setattr(adv, "fit", lambda *a, **k: (calls.append(k["name"]), real_fit(*a, **k))[1])
    resumed = adv.run_advantage(st, data, "DARTS_V2", tmp_path / "a", tmp_path / "ca", seed=0)
    assert len(calls) == 9 - 3 and "random2" in calls[0]  # the finished cells were not retrained
    calls.clear()
    adv.run_advantage(st, data, "DARTS_V2", tmp_path / "a", tmp_path / "ca", seed=0)
    assert calls == []

    saved = json.loads((tmp_path / "a" / "advantage.json").read_text())
    assert saved["n"] == len(saved["random"]) == 8 >= 8 and saved["metric"] == "r2"
    assert Genotype.from_dict(saved["found"]["genotype"]) == Genotype.from_dict(
        adv.resolve_genotype("DARTS_V2").to_dict())
    assert [Genotype.from_dict(c["genotype"]) for c in saved["random"]] == adv.random_cells(8, 0)
    scores = [c["score"] for c in saved["random"]]
    assert all(math.isfinite(s) for s in scores) and len(set(scores)) > 1
    assert saved["percentile"] == compare(saved["found"]["score"], scores)["percentile"]
    assert saved["protocol"]["epochs"] == 2 and saved["protocol"]["train_samples"] == 24
    assert saved["protocol"]["scored_on"] == "test" and saved["protocol"]["input_shape"] == [1, 8, 8]
    assert all(c["budget"]["epochs"] == 2 and c["budget"]["optimizer_steps"] == 4 for c in saved["random"])
    info = json.loads((tmp_path / "a" / "run_info.json").read_text())
    assert info["seed"] == 0 and info["config"]["stage"] == "search_advantage" and "torch" in info["versions"]

    fresh = adv.run_advantage(st, data, "DARTS_V2", tmp_path / "b", tmp_path / "cb", seed=0)
    assert [c["score"] for c in fresh["random"]] == [c["score"] for c in resumed["random"]]
    assert fresh["found"]["score"] == resumed["found"]["score"]


def test_a_new_found_cell_or_more_cells_retrain_only_what_is_new(tmp_path, monkeypatch):
    data = prepared()
    st = stage("search_advantage", config(num_cells=8, epochs=1))
    first = adv.run_advantage(st, data, "DARTS_V2", tmp_path / "a", tmp_path / "ca", seed=1)
    real_fit, calls = adv.fit, []
    monkeypatch.setattr(adv, "fit", lambda *a, **k: (calls.append(k["name"]), real_fit(*a, **k))[1])
    second = adv.run_advantage(st, data, "KIRIGAMI_2019", tmp_path / "a", tmp_path / "ca", seed=1)
    assert len(calls) == 1 and "found" in calls[0]
    assert [c["score"] for c in second["random"]] == [c["score"] for c in first["random"]]
    calls.clear()
    more = adv.run_advantage(stage("search_advantage", config(num_cells=9, epochs=1)), data, "KIRIGAMI_2019",
                             tmp_path / "a", tmp_path / "ca", seed=1)
    assert len(calls) == 1 and "random8" in calls[0] and more["n"] == 9


def test_rules_wire_the_found_cell_and_the_outputs():
    cfg = config()
    layout = Layout.from_config(cfg)
    rules = RuleInputs(cfg, layout)

    class W:
        dataset, seed = "d", "1"

    assert runs_advantage(cfg, "d")
    assert layout.advantage_outputs(cfg, "d") == ["results/d/search_advantage/seed0/advantage.json",
                                                   "results/d/search_advantage/seed1/advantage.json"]
    assert rules.train_genotype(W) == "results/d/search/selection/selected_genotype.json"  # the final cell
    steps = {(b["step"], b["seed"]) for b in layout.benchmark_files(cfg, "d")}
    assert ("search_advantage", 0) in steps and ("search_advantage", 1) in steps
    assert json.loads(layout.report_plan(cfg))["datasets"]["d"]["search_advantage"] is True
    settings = stage_document(cfg, "d", "search_advantage")["settings"]
    assert set(settings) == {"search_advantage", "train"}
    off = load_config({"datasets": {"d": {"kind": "digits", "search_advantage": {"enabled": False}}}})
    named = load_config({"datasets": {"d": {"kind": "digits", "train": {"genotype": "DARTS_V2"}}}})
    assert not runs_advantage(off, "d") and not runs_advantage(named, "d")
    assert Layout.from_config(named).advantage_outputs(named, "d") == []


def test_fewer_than_eight_random_cells_is_a_config_error():
    from workflow_lib.config import ConfigError

    with pytest.raises(ConfigError, match="search_advantage.num_cells"):
        load_config({"datasets": {"d": {"kind": "digits", "search_advantage": {"num_cells": 7}}}})


# ------------------------------------------------------------------------- no test score selects

def test_no_test_split_score_ever_selects_anything(tmp_path):
    """Permuting the test split's labels leaves the search's genotype, the selection step's choice and random
    search's winner unchanged (they read search-train / search-val only), while test scores change."""
    from workflow_lib.darts.search_run import run_search
    from workflow_lib.darts.selection import select_cell

    outcomes = {}
    for permuted in (False, True):
        data = prepared(permute_test=permuted)
        root = tmp_path / ("permuted" if permuted else "original")
        genotypes = {}
        for seed in (0, 1):
            run_search(stage("search"), data, root / f"search{seed}", root / f"ck_search{seed}", seed)
            genotypes[seed] = (root / f"search{seed}" / "genotype.json").read_text()
        selection = select_cell(stage("select_cell"), data,
                                {seed: root / f"search{seed}" / "genotype.json" for seed in (0, 1)},
                                root / "selection", root / "ck_selection")
        searched = rs.run(stage("random_search"), data, root / "rs", root / "ck_rs", seed=0)
        candidates = json.loads((root / "rs" / "candidates.json").read_text())
        found = adv.run_advantage(stage("search_advantage", config(epochs=1)), data,
                                  root / "selection" / "selected_genotype.json", root / "adv", root / "ck_adv", 0)
        outcomes[permuted] = {
            "genotypes": genotypes,
            "selected": (selection["selected_seed"], [c["val_metric"] for c in selection["candidates"]],
                         (root / "selection" / "selected_genotype.json").read_text()),
            "random_search": (candidates["best"], [c["val_metric"] for c in candidates["candidates"]],
                              searched["genotype"]),
            "test": (searched["test"]["r2"], found["found"]["score"], [c["score"] for c in found["random"]]),
        }
    original, permuted = outcomes[False], outcomes[True]
    assert permuted["genotypes"] == original["genotypes"]
    assert permuted["selected"] == original["selected"]
    assert permuted["random_search"] == original["random_search"]
    assert permuted["test"][0] != original["test"][0] and permuted["test"][1] != original["test"][1]
    assert all(a != b for a, b in zip(permuted["test"][2], original["test"][2]))
