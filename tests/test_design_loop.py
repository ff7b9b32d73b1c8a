"""The design stage (issue 13): oracle bookkeeping, exact budgets, reproducibility, recall, outputs, schema."""

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

from workflow_lib.datasets.prepared import PreparedData
from workflow_lib.design.config import DesignConfig, LearningCurvesConfig
from workflow_lib.design.loop import GuidedPicker, RandomPicker, run_design
from workflow_lib.design.models import candidate_images
from workflow_lib.design.oracle import Oracle, OracleError, candidate_table, load_table, save_table
from workflow_lib.design.run import cpu_device, design_from_table
from workflow_lib.design.score import Scorer
from workflow_lib.kirigami import enumerate_valid_patterns
from workflow_lib.report import design_figures

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------ config blocks
def _settings(block, **overrides):
    """The validated block with the schema's defaults (what the workflow passes to the step)."""
    from workflow_lib.config import load_config

    return load_config({"datasets": {"k": {"kind": "kirigami", block: overrides}}})["datasets"]["k"][block]


def test_schema_defaults_fill_the_dataclasses():
    cfg = DesignConfig.from_dict(_settings("design"))
    assert (cfg.n_initial, cfg.per_generation, cfg.generations, cfg.simulations) == (100, 100, 10, 1100)
    curves = LearningCurvesConfig.from_dict(_settings("learning_curves"))
    assert curves.sizes[-1] == "all"


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml"])
def test_shipped_settings_are_valid(name):
    from workflow_lib.config import load_config_file

    config = load_config_file(ROOT / "config" / name)
    block = config["datasets"]["kirigami"]
    assert DesignConfig.from_dict(block["design"]).enabled
    assert LearningCurvesConfig.from_dict(block["learning_curves"]).enabled


def test_incomplete_or_unknown_keys_are_named():
    values = _settings("design")
    del values["n_initial"]
    with pytest.raises(ValueError, match="missing keys \\['n_initial'\\]"):
        DesignConfig.from_dict(values)
    with pytest.raises(ValueError, match="unknown keys \\['bogus'\\]"):
        DesignConfig.from_dict({**_settings("design"), "bogus": 1})


# ------------------------------------------------------------------------------------------ oracle and scorer
def test_oracle_counts_and_refuses_repeats():
    oracle = Oracle(lambda i: i * 2.0, 10)
    assert list(oracle.reveal([3, 1])) == [6.0, 2.0]
    assert oracle.simulations == 2
    with pytest.raises(OracleError, match="already revealed"):
        oracle.reveal([1])
    with pytest.raises(OracleError, match="twice"):
        oracle.reveal([4, 4])
    with pytest.raises(OracleError, match="out of range"):
        oracle.reveal([10])
    assert oracle.simulations == 2 and oracle.revealed().sum() == 2


def test_scorer_recall_with_ties_and_r2():
    truth = np.array([5.0, 9.0, 9.0, 1.0, 7.0, 3.0])
    scorer = Scorer(truth, [1, 2, 3])
    assert scorer.best == 9.0 and list(scorer.order[:3]) == [1, 2, 4]
    # candidate 2 ties with the true best: it counts as a top-1 design, the count is capped at k
    assert scorer.found([2]) == {"found_top1": 1, "found_top2": 1, "found_top3": 1}
    assert scorer.found([1, 2, 4]) == {"found_top1": 1, "found_top2": 2, "found_top3": 3}
    assert scorer.found([0, 3]) == {"found_top1": 0, "found_top2": 0, "found_top3": 0}
    unseen = np.array([0, 3, 5])
    assert scorer.r2_unseen(truth, unseen) == 1.0
    assert scorer.r2_unseen(None, unseen) is None


# ------------------------------------------------------------------------------------------ loop
class PerfectModel:
    """Predicts the truth: its picks are known exactly (bookkeeping checks only)."""

    def __init__(self, truth):
        self.truth = truth
        self.calls = []

    def fit_predict(self, known, values, seed):
        self.calls.append((known.copy(), values.copy()))
        return self.truth


def _hand_made(n=200, seed=3):
    truth = np.random.default_rng(seed).permutation(n).astype(float)  # all distinct
    return truth, Scorer(truth, [10, 20])


def _observe(scorer):
    return lambda known, pred, unseen: {**scorer.found(known), "r2_unseen": scorer.r2_unseen(pred, unseen)}


def test_guided_loop_budget_no_repeats_and_recall():
    truth, scorer = _hand_made()
    model = PerfectModel(truth)
    oracle = Oracle(lambda i: truth[i], len(truth))
    run = run_design(GuidedPicker(model), oracle, 15, 10, 3, seed=0, observe=_observe(scorer))
    assert oracle.simulations == 15 + 3 * 10 == len(run.revealed) == len(set(run.revealed))
    assert [r["simulations"] for r in run.records] == [15, 25, 35, 45]
    # the model only ever saw revealed designs, with their true values
    for known, values in model.calls:
        assert np.array_equal(values, truth[known])
    initial = set(run.revealed[:15])
    best_unseen = [i for i in scorer.order if i not in initial]
    assert run.revealed[15:25] == best_unseen[:10]  # a perfect model picks the true best unseen
    assert run.records[1]["found_top10"] == 10 and run.records[1]["r2_unseen"] == 1.0
    assert run.records[-1]["best_true"] == truth.max()
    assert run.predicted[:15] == [None] * 15 and run.predicted[15] == truth[run.revealed[15]]


def test_random_baseline_same_budget_and_same_start():
    truth, scorer = _hand_made()
    runs = {}
    for name, picker in (("random", RandomPicker()), ("guided", GuidedPicker(PerfectModel(truth)))):
        oracle = Oracle(lambda i: truth[i], len(truth))
        runs[name] = run_design(picker, oracle, 15, 10, 3, seed=7, observe=_observe(scorer))
        assert oracle.simulations == 45 and len(set(runs[name].revealed)) == 45
    assert runs["random"].revealed[:15] == runs["guided"].revealed[:15]
    assert all(r["r2_unseen"] is None for r in runs["random"].records)


def test_seeds_reproduce_and_scores_never_reach_the_picks():
    truth, scorer = _hand_made()

    def revealed(seed, observe):
        oracle = Oracle(lambda i: truth[i], len(truth))
        return run_design(RandomPicker(), oracle, 15, 10, 3, seed=seed, observe=observe).revealed

    a = revealed(1, _observe(scorer))
    assert a == revealed(1, _observe(scorer))
    assert a == revealed(1, lambda *args: {"junk": np.random.random()})
    assert a != revealed(2, _observe(scorer))


def test_budget_larger_than_candidates_is_refused():
    with pytest.raises(ValueError, match="exceeds"):
        run_design(RandomPicker(), Oracle(lambda i: i, 20), 10, 5, 3, seed=0, observe=lambda *a: {})


# ------------------------------------------------------------------------------------------ table and stage
def _md_like(n_missing=0):
    """A PreparedData holding the valid patterns (tiny images: candidate_table reads patterns and targets)."""
    patterns = enumerate_valid_patterns()[n_missing:]
    order = np.random.default_rng(0).permutation(len(patterns))  # shuffled like the MD file
    y = patterns @ np.linspace(0.1, 1.5, 15)
    return PreparedData(x=np.zeros((len(order), 1, 1, 1), np.float32), y=y[order], task="regression",
                        target="yield_strain", coarse=patterns[order].reshape(-1, 3, 5), provenance={"source": "md"})


def test_candidate_table_from_md_and_saved_copy(tmp_path):
    data = _md_like()
    table = candidate_table(data)
    patterns = enumerate_valid_patterns()
    expected = (patterns @ np.linspace(0.1, 1.5, 15)).astype(np.float32)
    assert np.array_equal(table.values, expected) and table.simulated == 0
    save_table(table, tmp_path / "candidates.npz")
    assert np.array_equal(load_table(tmp_path / "candidates.npz", data).values, table.values)
    other = PreparedData(x=data.x, y=data.y + 1, task="regression", target="yield_strain", coarse=data.coarse,
                         provenance={"source": "md"})
    with pytest.raises(ValueError, match="disagrees"):
        load_table(tmp_path / "candidates.npz", other)
    with pytest.raises(ValueError, match="lacks 5"):
        candidate_table(_md_like(n_missing=5))


def test_strides_that_hide_a_cut_are_refused():
    patterns = enumerate_valid_patterns()[:200]
    assert candidate_images(patterns, 1, 3, 16).shape == (200, 1, 11, 5)
    with pytest.raises(ValueError, match="skip whole cuts"):
        candidate_images(patterns, 1, 4, 1)


def _tiny_cfg(models, seeds=(0, 1)):
    net = {"epochs": 1, "batch_size": 16, "max_steps_per_epoch": 2}
    return DesignConfig.from_dict(_settings(
        "design", enabled=True, seeds=list(seeds), models=models, n_initial=20, per_generation=10, generations=2,
        top_k=[10, 100], n_top_designs=3, input_stride=[3, 16],
        random_forest={"n_estimators": 5}, tiny_resnet=net))


def _design(tmp_path, models, seeds=(0, 1)):
    table = candidate_table(_md_like())
    return design_from_table("kirigami", _tiny_cfg(models, seeds), table, 1, list(seeds), None, 1,
                             cpu_device(1), tmp_path)


def _without_seconds(document):
    return json.loads(re.sub(r'"(wall_)?seconds": [0-9.e+-]+', '"seconds": 0', json.dumps(document)))


def test_design_outputs_reproduce(tmp_path):
    first = _design(tmp_path / "a", ["random_forest", "tiny_resnet", "random"], seeds=(0,))
    second = _design(tmp_path / "b", ["random_forest", "tiny_resnet", "random"], seeds=(0,))
    assert _without_seconds(first) == _without_seconds(second)
    saved = json.loads((tmp_path / "a" / "design.json").read_text())
    assert [(r["model"], r["simulations"]) for r in saved["runs"]] == [
        ("random_forest", 40), ("tiny_resnet", 40), ("random", 40)]
    rows = list(csv.DictReader(io.StringIO((tmp_path / "a" / "design.csv").read_text())))
    assert len(rows) == 3 * 3 and set(rows[0]) >= {"model", "seed", "simulations", "best_true", "found_top10",
                                                   "found_top100", "r2_unseen"}
    for run in saved["runs"]:
        assert len(set(run["revealed"])) == 40
        top = run["top_designs"]
        assert len(top) == 3 and top[0]["true"] == run["records"][-1]["best_true"]


def test_design_figures_and_table(tmp_path):
    document = _design(tmp_path, ["random_forest", "random"])
    for figure in (design_figures.best_vs_simulations, design_figures.recall_vs_simulations,
                   design_figures.top_designs):
        assert figure(document).startswith(b"\x89PNG")
    rows = design_figures.design_table_rows(document)
    assert {r["model"] for r in rows} == {"random_forest", "random"}
    assert all(r["runs"] == 2 and r["simulations"] == 40 for r in rows)
