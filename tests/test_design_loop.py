"""The design stage: settings and checks, acquisition on known answers, the loop's budgets and reproducibility,
no label leakage into any picker, the kirigami lookup table, documents and figures."""

import csv
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from workflow_lib.datasets.prepared import PreparedData
from workflow_lib.design.acquisition import Distances, expected_improvement, rank, select, upper_confidence_bound
from workflow_lib.design.config import DesignConfig, LearningCurvesConfig, slot_counts
from workflow_lib.design.loop import PickContext, close, new_state, pick, run_in_process, settle
from workflow_lib.design.models import ForestModel, Prediction
from workflow_lib.design.oracle import candidate_table, load_table, save_table
from workflow_lib.design.run import cpu_device, design_from_space
from workflow_lib.design.score import Scorer
from workflow_lib.design.space import DesignSpace, kirigami_space
from workflow_lib.kirigami import enumerate_valid_patterns
from workflow_lib.report import design_figures

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------ config blocks
def _config(design=None, **block):
    from workflow_lib.config import load_config

    block = {"kind": "kirigami", **block}
    if design is not None:
        block["design"] = design
    return load_config({"datasets": {"k": block}})


def _settings(**overrides):
    """The validated design block with the schema's defaults (what the workflow passes to the step)."""
    return _config(overrides)["datasets"]["k"]["design"]


def test_schema_defaults_fill_the_dataclasses():
    cfg = DesignConfig.from_dict(_settings())
    assert (cfg.n_initial, cfg.per_generation, cfg.generations, cfg.simulations) == (100, 100, 10, 1100)
    assert cfg.oracle.type == "lookup" and cfg.oracle.batch == 10 and cfg.oracle.resources.threads == 1
    assert cfg.pickers["random_forest_ei"].acquisition == "ei" and cfg.pickers["random"].model == "random"
    assert cfg.models == ["random_forest", "tiny_resnet", "random"]
    curves = LearningCurvesConfig.from_dict(_config()["datasets"]["k"]["learning_curves"])
    assert curves.sizes[-1] == "all"


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml"])
def test_shipped_settings_are_valid(name):
    from workflow_lib.config import load_config_file
    from workflow_lib.config.stage import design_settings

    block = load_config_file(ROOT / "config" / name)["datasets"]["kirigami"]
    cfg = DesignConfig.from_dict(design_settings(block))
    assert cfg.enabled and len(cfg.pickers) >= 4
    assert LearningCurvesConfig.from_dict(block["learning_curves"]).enabled


def test_incomplete_or_unknown_keys_are_named():
    values = _settings()
    del values["n_initial"]
    with pytest.raises(ValueError, match="missing keys \\['n_initial'\\]"):
        DesignConfig.from_dict(values)
    with pytest.raises(ValueError, match="unknown keys \\['bogus'\\]"):
        DesignConfig.from_dict({**_settings(), "bogus": 1})


BAD_CONFIGS = [
    ({"kind": "digits", "design": {"enabled": True}}, "design.enabled': the design loop searches"),
    ({"kind": "npz", "source": {"type": "npz", "path": __file__, "task": "classification"},
      "design": {"enabled": True}}, "source.task': the design loop maximises"),
    ({"kind": "npz", "source": {"type": "npz", "path": __file__, "task": "regression", "subset": 10},
      "design": {"enabled": True}}, "source.subset': the design loop's candidates"),
    ({"design": {"enabled": True, "oracle": {"type": "command", "command": "sim --in x"}}},
     "oracle.command': the command oracle needs a command with {designs} and {out}"),
    ({"design": {"enabled": True, "pickers": {"d": {"model": "darts"}}}}, "pickers.d.model': a darts picker needs"),
    ({"design": {"enabled": True, "pickers": {"t": {"model": "tiny_resnet", "acquisition": "ucb"}}}},
     "pickers.t': acquisition ucb needs a spread"),
    ({"design": {"enabled": True, "pickers": {"r": {"model": "random", "acquisition": "ei"}}}},
     "pickers.r': the random picker has no model"),
    ({"design": {"enabled": True, "pickers": {"bad name": {"model": "random"}}}}, "does not match"),
    ({"source": {"unlabelled": "drop"}}, "source.unlabelled': rows without a label"),
]


@pytest.mark.parametrize("block,message", BAD_CONFIGS)
def test_config_checks_name_the_key(block, message):
    from workflow_lib.config.load import ConfigError

    with pytest.raises(ConfigError, match=re.escape(message)):
        _config(**block)


def test_darts_picker_takes_a_named_cell_never_the_searched_one():
    from workflow_lib.config.stage import design_settings
    from workflow_lib.workflow.targets import Layout, RuleInputs

    config = _config({"enabled": True, "pickers": {"d": {"model": "darts"}}}, train={"genotype": "KIRIGAMI_2019"},
                     methods=["darts"])
    assert design_settings(config["datasets"]["k"])["darts"]["genotype"] == "KIRIGAMI_2019"
    inputs = RuleInputs(config, Layout.from_config(config)).design_inputs(type("W", (), {"dataset": "k"})())
    assert not any("genotype" in str(path) for path in inputs.values())


def test_slot_counts_cover_every_possible_new_design():
    design = _settings(n_initial=10, per_generation=5, generations=2, oracle={"batch": 4},
                       pickers={"a": {"model": "random"}, "b": {"model": "random_forest"}})
    # generation 0: 10 initial designs per seed (shared by the pickers); then 2 pickers x 3 seeds x 5
    assert slot_counts(design, 3) == [8, 8, 8]
    assert slot_counts(design, 1) == [3, 3, 3]


# ------------------------------------------------------------------------------------------ acquisition
def test_expected_improvement_known_answers():
    # at mean = best, EI = std * phi(0) = std / sqrt(2 pi) (Jones et al. 1998, eq. 15)
    assert expected_improvement(np.array([1.0]), np.array([2.0]), 1.0)[0] == pytest.approx(2 / math.sqrt(2 * math.pi))
    # no spread: EI = max(mean - best, 0)
    assert list(expected_improvement(np.array([3.0, 0.0]), np.zeros(2), 1.0)) == [2.0, 0.0]
    # against E[max(Y - best - xi, 0)], Y ~ N(mean, std^2), by quadrature
    mean, std, best, xi = 0.3, 0.7, 0.9, 0.1
    y = np.linspace(mean - 12 * std, mean + 12 * std, 400001)
    density = np.exp(-0.5 * ((y - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))
    quadrature = np.trapezoid(np.maximum(y - best - xi, 0) * density, y)
    assert expected_improvement(np.array([mean]), np.array([std]), best, xi)[0] == pytest.approx(quadrature, rel=1e-6)
    # EI prefers a spread-out candidate to a sure one of the same mean below the best
    assert np.argmax(expected_improvement(np.array([0.5, 0.5]), np.array([0.0, 1.0]), 1.0)) == 1


def test_ucb_known_answer():
    assert list(upper_confidence_bound(np.array([1.0, 2.0]), np.array([0.5, 0.0]), 2.0)) == [2.0, 2.0]


def test_distances_hamming_fraction_and_standardized_euclidean():
    bits = np.array([[0, 0, 0, 0], [1, 0, 0, 0], [1, 1, 1, 1]], np.float32)
    assert list(Distances(bits, binary=True).from_one(0, np.array([1, 2]))) == [0.25, 1.0]
    points = np.array([[0.0, 10.0], [2.0, 10.0], [1.0, 30.0]])
    # standardized columns: std 0.816 and 9.43; d(0, 1) = sqrt(((2 / 0.816)^2 + 0) / 2 / 2)
    expected = math.sqrt((2 / points[:, 0].std()) ** 2 / 2 / 2)
    assert Distances(points, binary=False).from_one(0, np.array([1]))[0] == pytest.approx(expected)


def test_batch_rules_on_a_known_case():
    features = np.array([[0] * 15, [1] + [0] * 14, [1] * 15, [0] * 14 + [1], [1, 1] + [0] * 13], np.float32)
    distances = Distances(features, binary=True)
    order = np.array([0, 1, 2, 3, 4])  # 1, 3 and 4 are within 2 bits of 0 (fraction < 0.15)
    assert list(select(order, 3, "top").picks) == [0, 1, 2]
    diverse = select(order, 2, "diverse", 0.15, distances)
    assert list(diverse.picks) == [0, 2] and diverse.filled == 0
    # only two designs are 0.15 apart: the third pick is the best skipped one, and it is counted
    filled = select(order, 3, "diverse", 0.15, distances)
    assert list(filled.picks) == [0, 2, 1] and filled.filled == 1
    ranked = rank(np.array([5.0, 9.0, 9.0, 1.0]), np.array([0, 1, 2, 3]), np.random.default_rng(0))
    assert set(ranked[:2]) == {1, 2} and list(ranked[2:]) == [0, 3]


def test_forest_spread_is_the_spread_of_its_trees():
    rng = np.random.default_rng(0)
    features = rng.integers(0, 2, (300, 15)).astype(np.float32)
    values = features @ rng.normal(size=15)
    cfg = DesignConfig.from_dict(_settings(random_forest={"n_estimators": 20})).random_forest
    prediction = ForestModel(cfg, features, 1).fit_predict(np.arange(100), values[:100], seed=3)
    from sklearn.ensemble import RandomForestRegressor

    forest = RandomForestRegressor(n_estimators=20, max_features=1.0, random_state=3).fit(features[:100], values[:100])
    trees = np.stack([tree.predict(features) for tree in forest.estimators_])
    assert np.allclose(prediction.mean, trees.mean(axis=0)) and np.allclose(prediction.std, trees.std(axis=0))
    assert prediction.std[100:].mean() > prediction.std[:100].mean()  # less sure away from the training designs


# ------------------------------------------------------------------------------------------ the loop
class PerfectModel:
    """Predicts the truth (bookkeeping checks only); records what it was given."""

    def __init__(self, truth, spread=None):
        self.truth, self.spread, self.calls = truth, spread, []

    def fit_predict(self, known, values, seed):
        self.calls.append((known.copy(), values.copy()))
        return Prediction(self.truth.astype(float), self.spread)


def _space(truth, given=None, features=None):
    n = len(truth)
    features = np.random.default_rng(1).integers(0, 2, (n, 15)).astype(np.float32) if features is None else features
    return DesignSpace(kind="npz", source="npz", target="y", features=features, truth=np.asarray(truth, float),
                       given=np.full(n, np.nan) if given is None else given, digest="test")


def _cfg(pickers, n_initial=15, per_generation=10, generations=3, seeds=(0,)):
    return DesignConfig.from_dict(_settings(enabled=True, seeds=list(seeds), pickers=pickers, n_initial=n_initial,
                                            per_generation=per_generation, generations=generations,
                                            random_forest={"n_estimators": 10}, top_k=[10, 20]))


def _hand_made(n=200, seed=3):
    truth = np.random.default_rng(seed).permutation(n).astype(float)  # all distinct
    return truth, Scorer(truth, [10, 20])


def _observe(scorer):
    return lambda known, pred, unseen: {**scorer.found(known), "r2_unseen": scorer.r2_unseen(pred, unseen)}


def _run(cfg, space, model, observe=None, seeds=(0,)):
    truth = space.truth
    ctx = PickContext(cfg=cfg, space=space, model=lambda name, ensemble: model)
    return run_in_process(new_state(cfg, list(seeds), space.given), ctx,
                          lambda ids: {i: (float(truth[i]), "ok") for i in ids}, observe)


def test_guided_loop_budget_no_repeats_and_recall():
    truth, scorer = _hand_made()
    model = PerfectModel(truth)
    state = _run(_cfg({"g": {"model": "random_forest"}}), _space(truth), model, _observe(scorer))
    run = state.runs[0]
    assert len(run.revealed) == 15 + 3 * 10 == len(set(run.revealed))
    assert [r["simulations"] for r in run.records] == [15, 25, 35, 45]
    for known, values in model.calls:  # the model only ever saw revealed designs, with their values
        assert np.array_equal(values, truth[known]) and set(known) <= set(run.revealed)
    best_unseen = [i for i in scorer.order if i not in set(run.revealed[:15])]
    assert run.revealed[15:25] == best_unseen[:10]  # a perfect model picks the true best unseen
    assert run.records[1]["found_top10"] == 10 and run.records[1]["r2_unseen"] == 1.0
    assert run.records[-1]["best"] == truth.max()
    assert run.predicted[:15] == [None] * 15 and run.predicted[15] == truth[run.revealed[15]]


def test_pickers_of_a_seed_share_the_start_and_spend_the_same_budget():
    truth, scorer = _hand_made()
    cfg = _cfg({"g": {"model": "random_forest"}, "u": {"model": "random_forest", "acquisition": "ucb"},
                "r": {"model": "random"}}, seeds=(0, 1))
    state = _run(cfg, _space(truth), PerfectModel(truth, np.ones(len(truth))), _observe(scorer), seeds=(0, 1))
    by = {(r.picker, r.seed): r for r in state.runs}
    for seed in (0, 1):
        starts = {tuple(by[(p, seed)].revealed[:15]) for p in "gur"}
        assert len(starts) == 1
    assert by[("g", 0)].revealed[:15] != by[("g", 1)].revealed[:15]
    assert all(len(r.revealed) == len(set(r.revealed)) == 45 for r in state.runs)
    assert all(rec["r2_unseen"] is None for rec in by[("r", 0)].records)
    # a design several runs revealed is in the table once
    assert len(state.known) == len({i for r in state.runs for i in r.revealed})


def test_seeds_reproduce_and_scores_never_reach_the_picks():
    truth, scorer = _hand_made()
    cfg = _cfg({"r": {"model": "random"}}, seeds=(1,))

    def revealed(seed, observe):
        return _run(_cfg({"r": {"model": "random"}}, seeds=(seed,)), _space(truth), None, observe,
                    seeds=(seed,)).runs[0].revealed

    a = revealed(1, _observe(scorer))
    assert a == revealed(1, _observe(scorer)) == revealed(1, lambda *args: {"junk": np.random.random()})
    assert a != revealed(2, _observe(scorer)) and cfg.simulations == 45


def test_budget_larger_than_candidates_is_refused():
    truth = np.arange(20.0)
    with pytest.raises(ValueError, match="exceeds"):
        _run(_cfg({"r": {"model": "random"}}, n_initial=10, per_generation=5, generations=3), _space(truth), None)


def test_given_designs_are_known_to_every_run_and_cost_no_budget():
    truth, _ = _hand_made()
    given = np.full(len(truth), np.nan)
    given[:5] = truth[:5]
    model = PerfectModel(truth)
    state = _run(_cfg({"g": {"model": "random_forest"}}), _space(truth, given=given), model)
    run = state.runs[0]
    assert len(run.revealed) == 45 and not set(run.revealed) & set(range(5))
    assert all(set(range(5)) <= set(known) for known, _ in model.calls)


def test_failed_designs_count_and_are_never_picked_again():
    truth, _ = _hand_made()
    space = _space(truth)
    cfg = _cfg({"g": {"model": "random_forest"}, "r": {"model": "random"}})
    ctx = PickContext(cfg=cfg, space=space, model=lambda name, ensemble: PerfectModel(truth))
    state = new_state(cfg, [0], space.given)
    failed = set()
    for generation in range(cfg.generations + 1):
        requested = pick(state, generation, ctx)
        assert not failed & {i for r in state.runs for i, g in zip(r.revealed, r.generation) if g == generation}
        broken = set(requested[::4])  # every fourth design's simulation fails
        settle(state, {i: (None if i in broken else truth[i], "failed" if i in broken else "ok") for i in requested},
               generation)
        failed |= broken
        close(state, generation)
    for run in state.runs:
        assert len(run.revealed) == 45 and run.records[-1]["failed"] == len(failed & set(run.revealed)) > 0


# ------------------------------------------------------------------------------------------ no label leakage
LEAK_PICKERS = {
    "greedy": {"model": "random_forest"},
    "ucb": {"model": "random_forest", "acquisition": "ucb"},
    "ei_diverse": {"model": "random_forest", "acquisition": "ei", "batch": "diverse"},
    "net_ucb": {"model": "tiny_resnet", "acquisition": "ucb", "ensemble": 2},
    "random": {"model": "random"},
}


def _kirigami_space(truth, n=29791):
    patterns = enumerate_valid_patterns()[:n]
    return DesignSpace(kind="kirigami", source="surrogate", target="yield_strain",
                       features=patterns.reshape(len(patterns), -1).astype(np.float32), truth=truth,
                       given=np.full(len(patterns), np.nan), digest="test", patterns=patterns, pad_rows=1)


def test_no_picker_sees_an_unrevealed_label(tmp_path):
    """Poison every label no run revealed (+-1e30): every picker's picks and predictions stay the same."""
    patterns = enumerate_valid_patterns()[:600]
    truth = patterns.astype(float) @ np.linspace(-1, 1.5, 15)
    cfg = DesignConfig.from_dict(_settings(
        enabled=True, seeds=[0], pickers=LEAK_PICKERS, n_initial=20, per_generation=10, generations=2,
        input_stride=[3, 16], random_forest={"n_estimators": 10}, top_k=[10],
        tiny_resnet={"epochs": 1, "batch_size": 16, "max_steps_per_epoch": 2}))
    first = design_from_space("k", cfg, _kirigami_space(truth, 600), [0], 1, cpu_device(1), tmp_path / "a")
    revealed = {i for run in first["runs"] for i in run["revealed"]}
    poisoned = truth.copy()
    hidden = np.setdiff1d(np.arange(len(truth)), sorted(revealed))
    poisoned[hidden] = np.where(hidden % 2, 1e30, -1e30)
    second = design_from_space("k", cfg, _kirigami_space(poisoned, 600), [0], 1, cpu_device(1), tmp_path / "b")
    for a, b in zip(first["runs"], second["runs"]):
        assert a["picker"] == b["picker"] and a["revealed"] == b["revealed"], a["picker"]
        assert [d["predicted"] for d in a["top_designs"]] == [d["predicted"] for d in b["top_designs"]]
        assert [r["best"] for r in a["records"]] == [r["best"] for r in b["records"]]


# ------------------------------------------------------------------------------------------ kirigami table
def _md_like(n_missing=0):
    """A PreparedData holding the valid patterns (images: only the first rows are real, for dataset_pad_rows)."""
    from workflow_lib.kirigami import pad, tile

    patterns = enumerate_valid_patterns()[n_missing:]
    order = np.random.default_rng(0).permutation(len(patterns))  # shuffled like the MD file
    y = patterns @ np.linspace(0.1, 1.5, 15)
    x = np.zeros((len(order), 1, 32, 80), np.float32)
    x[:8, 0] = pad(tile(patterns[order[:8]].reshape(-1, 3, 5)), 1)
    return PreparedData(x=x, y=y[order], task="regression", target="yield_strain",
                        coarse=patterns[order].reshape(-1, 3, 5), provenance={"source": "md"})


@pytest.fixture(scope="module")
def md_like():
    return _md_like()


def test_candidate_table_from_md_and_saved_copy(tmp_path, md_like):
    table = candidate_table(md_like)
    patterns = enumerate_valid_patterns()
    expected = (patterns @ np.linspace(0.1, 1.5, 15)).astype(np.float32)
    assert np.array_equal(table.values, expected) and table.simulated == 0
    save_table(table, tmp_path / "candidates.npz")
    assert np.array_equal(load_table(tmp_path / "candidates.npz", md_like).values, table.values)
    other = PreparedData(x=md_like.x, y=md_like.y + 1, task="regression", target="yield_strain",
                         coarse=md_like.coarse, provenance={"source": "md"})
    with pytest.raises(ValueError, match="disagrees"):
        load_table(tmp_path / "candidates.npz", other)
    with pytest.raises(ValueError, match="lacks 5"):
        candidate_table(_md_like(n_missing=5))


def test_strides_that_hide_a_cut_are_refused():
    space = _kirigami_space(np.zeros(200), 200)
    assert space.images(3, 16).shape == (200, 1, 11, 5)
    with pytest.raises(ValueError, match="skip whole cuts"):
        space.images(4, 1)


def _tiny_cfg(pickers, seeds=(0, 1)):
    net = {"epochs": 1, "batch_size": 16, "max_steps_per_epoch": 2}
    return DesignConfig.from_dict(_settings(
        enabled=True, seeds=list(seeds), pickers=pickers, n_initial=20, per_generation=10, generations=2,
        top_k=[10, 100], n_top_designs=3, input_stride=[3, 16], random_forest={"n_estimators": 5}, tiny_resnet=net))


PICKERS = {"random_forest": {"model": "random_forest"}, "tiny_resnet": {"model": "tiny_resnet"},
           "random": {"model": "random"}}


def _design(tmp_path, md_like, pickers, seeds=(0, 1)):
    space = kirigami_space(md_like, "lookup", candidate_table(md_like))
    return design_from_space("kirigami", _tiny_cfg(pickers, seeds), space, list(seeds), 1, cpu_device(1), tmp_path)


def _without_seconds(document):
    document = {k: v for k, v in document.items() if k != "run_info"}
    return json.loads(re.sub(r'"(wall_)?seconds": [0-9.e+-]+', '"seconds": 0', json.dumps(document)))


def test_design_outputs_reproduce(tmp_path, md_like):
    first = _design(tmp_path / "a", md_like, PICKERS, seeds=(0,))
    second = _design(tmp_path / "b", md_like, PICKERS, seeds=(0,))
    assert _without_seconds(first) == _without_seconds(second)
    saved = json.loads((tmp_path / "a" / "design.json").read_text())
    assert [(r["picker"], r["simulations"], r["distinct"]) for r in saved["runs"]] == [
        ("random_forest", 40, 40), ("tiny_resnet", 40, 40), ("random", 40, 40)]
    rows = list(csv.DictReader(io.StringIO((tmp_path / "a" / "design.csv").read_text())))
    assert len(rows) == 3 * 3 and set(rows[0]) >= {"picker", "model", "seed", "simulations", "best",
                                                   "found_top10", "found_top100", "r2_unseen"}
    table = list(csv.DictReader(io.StringIO((tmp_path / "a" / "simulations.csv").read_text())))
    revealed = {i for run in saved["runs"] for i in run["revealed"]}
    assert sorted(int(r["id"]) for r in table) == sorted(revealed) == sorted(set(int(r["id"]) for r in table))
    assert saved["oracle"]["designs"] == len(revealed) and saved["true"]["top"][0]["value"] == saved["true"]["best"]
    for run in saved["runs"]:
        top = run["top_designs"]
        assert len(top) == 3 and top[0]["value"] == run["records"][-1]["best"] and len(top[0]["pattern"]) == 15


def test_design_figures_and_table(tmp_path, md_like):
    document = _design(tmp_path, md_like, {"random_forest": {"model": "random_forest"},
                                           "rf_ei": {"model": "random_forest", "acquisition": "ei"},
                                           "random": {"model": "random"}})
    for figure in (design_figures.best_vs_simulations, design_figures.recall_vs_simulations,
                   design_figures.top_designs):
        assert figure(document).startswith(b"\x89PNG")
    rows = design_figures.design_table_rows(document)
    assert {r["picker"] for r in rows} == {"random_forest", "rf_ei", "random"}
    assert all(r["runs"] == 2 and r["simulations"] == 40 for r in rows)
    assert "EI" in next(r["label"] for r in rows if r["picker"] == "rf_ei")
    assert design_figures.top_design_rows(document)[0]["rank"] == 1
