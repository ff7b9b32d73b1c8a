"""The HTML report rendered from a synthetic, format-exact results tree (tests/fixtures_report.py)."""

from __future__ import annotations

import base64
import html as html_mod
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from fixtures_report import METHODS, rendered_report, write_results_tree
from workflow_lib.report import collect as C
from workflow_lib.report import render as R


@pytest.fixture(scope="module")
def rep(tmp_path_factory):
    return rendered_report(tmp_path_factory)


def _table(html: str, table_id: str) -> str:
    match = re.search(rf'<table[^>]*id="{re.escape(table_id)}"[^>]*>(.*?)</table>', html, flags=re.S)
    assert match, f"table {table_id} missing"
    return match.group(1)


def _result_rows(html: str, dataset: str) -> dict[str, dict[str, dict]]:
    body = _table(html, f"results-{dataset}")
    rows = {}
    for method, row in re.findall(r'<tr data-method="([^"]+)">(.*?)</tr>', body, flags=re.S):
        cells = {}
        for best, metric, value, std, text in re.findall(
                r'<td class="num( best)?" data-metric="([^"]+)" data-value="([^"]*)" data-std="([^"]*)">(.*?)</td>',
                row, flags=re.S):
            cells[metric] = {"best": bool(best), "value": float(value), "std": float(std),
                             "text": re.sub(r"<[^>]+>", "", text)}
        rows[method] = cells
    return rows


# ------------------------------------------------------------------------------------- structure

def test_every_dataset_has_a_section_with_all_parts(rep):
    for name in rep.tree.datasets:
        assert f'id="ds-{name}"' in rep.html
        for part in ("results", "cells", "curves", "sparsity", "genotype"):
            assert f'id="ds-{name}-{part}"' in rep.html, (name, part)
    assert 'id="ds-kirigami-parity"' in rep.html and 'id="ds-digits-parity"' not in rep.html
    assert 'id="ds-digits-confusion"' in rep.html and 'id="ds-kirigami-confusion"' not in rep.html
    assert 'id="comparison"' in rep.html and 'id="sparsity-stats"' in rep.html


def test_surrogate_banner_only_for_surrogate_data(rep):
    assert 'id="surrogate-banner-kirigami"' in rep.html
    assert 'class="banner warning"' in rep.html
    assert "surrogate-banner-digits" not in rep.html
    assert rep.manifest["surrogate_datasets"] == ["kirigami"]


def test_header_has_commit_versions_hardware_and_date(rep):
    assert "abc1234" in rep.html
    versions = _table(rep.html, "versions")
    assert "torch" in versions and "2.14.1" in versions
    hardware = _table(rep.html, "hardware")
    assert "NVIDIA H100 80GB HBM3" in hardware and "node-a" in hardware
    assert re.search(r"Generated \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", rep.html)


# ----------------------------------------------------------------------------------------- numbers

@pytest.mark.parametrize("dataset,metrics", [("kirigami", ("r2", "mae", "rmse")), ("digits", ("accuracy",))])
def test_results_table_matches_the_fixture_metrics(rep, dataset, metrics):
    rows = _result_rows(rep.html, dataset)
    assert sorted(rows) == sorted(METHODS)
    for method in METHODS:
        assert sorted(rows[method]) == sorted(metrics)
        for metric in metrics:
            values = [rep.tree.metrics[dataset][method][s]["test"][metric] for s in rep.tree.seeds]
            cell = rows[method][metric]
            assert cell["value"] == pytest.approx(np.mean(values), rel=1e-12)
            assert cell["std"] == pytest.approx(np.std(values, ddof=1), rel=1e-9)
            assert cell["text"] == f"{np.mean(values):.4f} ± {np.std(values, ddof=1):.4f}"


def test_best_value_highlighted_per_column(rep):
    for dataset, metrics in (("kirigami", {"r2": max, "mae": min, "rmse": min}), ("digits", {"accuracy": max})):
        rows = _result_rows(rep.html, dataset)
        for metric, pick in metrics.items():
            best = pick(rows, key=lambda m: rows[m][metric]["value"])
            flagged = [m for m in rows if rows[m][metric]["best"]]
            assert flagged == [best], (dataset, metric)
    assert [m for m, r in _result_rows(rep.html, "kirigami").items() if r["r2"]["best"]] == ["darts"]


def test_parameters_time_and_device_columns(rep):
    body = _table(rep.html, "results-kirigami")
    row = re.search(r'<tr data-method="resnet18">(.*?)</tr>', body, flags=re.S).group(1)
    assert "11.17 M" in row and "cuda:0" in row
    rf = re.search(r'<tr data-method="random_forest">(.*?)</tr>', body, flags=re.S).group(1)
    assert ">cpu<" in rf
    seconds = [rep.tree.metrics["kirigami"]["resnet18"][s]["train_seconds"] for s in rep.tree.seeds]
    assert f'data-value="{float(np.mean(seconds))!r}"' in row


def test_per_seed_table_has_one_row_per_method_and_seed(rep):
    body = _table(rep.html, "seeds-digits")
    rows = re.findall(r'<tr data-method="([^"]+)" data-seed="(\d+)">', body)
    assert sorted(rows) == sorted((m, str(s)) for m in METHODS for s in rep.tree.seeds)


def test_stage_times_sum_the_benchmark_files(rep):
    body = _table(rep.html, "stage-times")
    for stage, seconds in rep.tree.stage_seconds.items():
        match = re.search(rf'<tr data-stage="{stage}"><td>{stage}</td><td class="num" data-value="([^"]+)"', body)
        assert match, stage
        assert float(match.group(1)) == pytest.approx(seconds)


# ----------------------------------------------------------------------------- sparsity / genotype

def test_sparsity_statistics_separate_the_datasets(rep):
    body = _table(rep.html, "sparsity-stats")
    stats = {}
    for dataset, cell, row in re.findall(r'<tr data-dataset="([^"]+)" data-cell="([^"]+)">(.*?)</tr>', body, re.S):
        values = [float(v) for v in re.findall(r'data-value="([^"]+)"', row)]
        stats[(dataset, cell)] = dict(zip(("max", "edge_max", "entropy", "near", "skip"), values))
    assert set(stats) == {(d, c) for d in ("kirigami", "digits") for c in ("normal", "reduce")}
    for cell in ("normal", "reduce"):
        kir, dig = stats[("kirigami", cell)], stats[("digits", cell)]
        assert kir["entropy"] > 0.99 and dig["entropy"] < 0.8
        assert kir["near"] > 0.5 > dig["near"]
        assert kir["max"] < 0.2 < dig["max"]


def test_genotype_changes_match_the_fixture(rep):
    for dataset, per_seed in rep.tree.genotype_changes.items():
        for seed, changed in per_seed.items():
            epochs = len(json.loads((rep.tree.results_dir / dataset / "search" / f"seed{seed}" /
                                     "history.json").read_text())["epochs"])
            assert (f"Seed {seed}: the derived cell changed at {len(changed)} of {epochs} epochs "
                    f"(epochs {', '.join(map(str, changed))}") in rep.html


def _diagnostics_rows(html: str, dataset: str) -> dict[int, str]:
    body = _table(html, f"diagnostics-{dataset}")
    return {int(seed): row for seed, row in re.findall(r'<tr data-seed="(\d+)">(.*?)</tr>', body, flags=re.S)}


def test_search_diagnostics_per_seed(rep):
    """Stop and verdict, epochs since the last change, logit margins against the possible drift, eigenvalues."""
    for dataset in rep.tree.datasets:
        assert f'id="ds-{dataset}-diagnostics"' in rep.html
        rows = _diagnostics_rows(rep.html, dataset)
        assert sorted(rows) == rep.tree.seeds
        for seed, row in rows.items():
            history = rep.tree.histories[dataset][seed]
            if "stop_reason" not in history:  # an older result: every value is "not recorded"
                assert row.count("not recorded") >= 6, row
                continue
            final = history["epochs"][-1]
            assert f"{final['stable_epochs_normal']} / {final['stable_epochs_reduce']}" in row
            assert f"{final['logit_margin_median_normal']:.3g} / {final['logit_margin_max_normal']:.3g}" in row
            assert f'data-value="{final["max_logit_drift"]!r}"' in row
            values = rep.tree.eigenvalues[dataset][seed]
            assert f'data-value="{values[-1][1]!r}"' in row
            assert f"{values[0][1]:.3g} (epoch {values[0][0]}) to {values[-1][1]:.3g} (epoch {values[-1][0]}), " \
                   f"{len(values)} values" in row
            verdict = "conclusive</span>" if history["conclusive"] else "not conclusive</span>"
            assert verdict in row
            assert html_mod.escape(history["conclusive_reason"], quote=False) in rep.html
    kirigami = _diagnostics_rows(rep.html, "kirigami")[0]
    assert "max_epochs: all 6 of 6 epochs" in kirigami
    assert "stable_genotype after epoch 8 of 12; the cell of epoch 8" in _diagnostics_rows(rep.html, "digits")[0]
    assert [e for e, _ in rep.tree.eigenvalues["kirigami"][0]] == [1, 3, 5, 6]  # every 2nd from the first, the last


def test_logit_margins_are_judged_against_the_possible_drift(rep):
    """Kirigami's weights stay near 1/8: its margins are below what the steps could move a logit (noise);
    digits' weights spread: larger margins."""
    def sentence(dataset, seed):
        match = re.search(rf'<li data-seed="{seed}"[^>]*>(.*?)</li>',
                          rep.html.split(f'id="ds-{dataset}-diagnostics"')[1], flags=re.S)
        return " ".join(match.group(1).split())
    assert "the derived cell could be decided by noise" in sentence("kirigami", 0)
    assert "more than the" in sentence("digits", 0) and "any single logit could have moved" in sentence("digits", 0)
    assert "logit margins: not recorded" in sentence("digits", 1) and "verdict: not recorded" in sentence("digits", 1)
    assert 'data-conclusive="unknown"' in rep.html


def test_report_derives_cells_with_the_searchs_own_rule(rep):
    """Without genotypes in history.json the report derives them from alphas.npz with darts.derive, so its
    cells (edge order included) are exactly the search's."""
    from workflow_lib.report.collect import SearchRun
    from workflow_lib.report.sparsity import epoch_genotypes

    history = json.loads((rep.tree.results_dir / "digits" / "search" / "seed0" / "history.json").read_text())
    with np.load(rep.tree.results_dir / "digits" / "search" / "seed0" / "alphas.npz") as npz:
        normal, reduce = npz["normal"], npz["reduce"]
    bare = SearchRun(0, list(history["primitives"]), "accuracy", [{} for _ in history["epochs"]], None, normal,
                     reduce, None, {})
    derived = epoch_genotypes(bare)
    assert [g["normal"] for g in derived] == [e["genotype"]["normal"] for e in history["epochs"]]
    assert [g["reduce"] for g in derived] == [e["genotype"]["reduce"] for e in history["epochs"]]


# ------------------------------------------------------------------------------- search advantage

def _advantage_sentence(html: str, dataset: str) -> str:
    match = re.search(rf'<p class="advantage[^"]*" id="advantage-{dataset}">(.*?)</p>', html, flags=re.S)
    assert match, f"no search-advantage sentence for {dataset}"
    return html_mod.unescape(match.group(1))


def test_search_advantage_sentence_heads_each_section(rep):
    for dataset in rep.tree.datasets:
        section = rep.html[rep.html.index(f'id="ds-{dataset}"'):]
        assert section.index(f'id="advantage-{dataset}"') < section.index(f'id="ds-{dataset}-results"')
    kirigami = _advantage_sentence(rep.html, "kirigami")
    # pooled over the two seeds: 7 + 6 of 16 random cells beaten
    runs = rep.tree.advantage["kirigami"]
    scores = [cell["score"] for seed in rep.tree.seeds for cell in runs[seed]["random"]]
    found = np.mean([runs[seed]["found"]["score"] for seed in rep.tree.seeds])
    assert kirigami.startswith("Search advantage: the found cells of 2 seeds beat 13 of 16 random cells of the "
                               "same space (pooled percentile 81; test R² ")
    assert f"{found:.4f} (mean) vs random {np.mean(scores):.4f} ± {np.std(scores, ddof=1):.4f}" in kirigami
    assert f"relative improvement {100 * (found - np.mean(scores)) / np.mean(scores):+.1f}%" in kirigami
    assert "all trained with the same 3-epoch protocol" in kirigami and "final training runs 10 epochs" in kirigami
    digits = _advantage_sentence(rep.html, "digits")
    assert digits.startswith("Search advantage: none. The found cells of 2 seeds were no better than random cells "
                             "of the same space: they beat 2 of 16 random cells and tied 1 (pooled percentile 16; "
                             "test accuracy ")
    assert 'class="advantage better" id="advantage-kirigami"' in rep.html
    assert 'class="advantage not-better" id="advantage-digits"' in rep.html



@pytest.mark.parametrize("metric, mean, says", [("r2", -0.3, True), ("r2", 0.0, True), ("r2", 0.4, False),
                                                ("accuracy", 0.0, False)])
def test_too_short_protocol_is_said_when_random_cells_do_not_beat_the_mean(metric, mean, says):
    """R^2 <= 0 on average: the random cells predict no better than the mean target, the ranking says little."""
    from workflow_lib.report.advantage import short_protocol_caveat

    caveat = short_protocol_caveat({"random_mean": mean, "protocol": {"metric": metric}})
    assert ("too short to rank cells" in caveat) is says

def test_search_advantage_table_and_budget(rep):
    body = _table(rep.html, "advantage-table-kirigami")
    rows = re.findall(r'<tr data-seed="(\d+)">(.*?)</tr>', body, flags=re.S)
    assert [seed for seed, _ in rows] == ["0", "1"]
    assert "7 / 8" in rows[0][1] and 'data-value="87.5"' in rows[0][1] and "6 / 8" in rows[1][1]
    assert "1 / 8 (1 tied)" in _table(rep.html, "advantage-table-digits")
    assert "search advantage (found + random cells" in _table(rep.html, "budget-kirigami")
    table = rep.figures_dir / "kirigami" / "tables" / "search_advantage.csv"
    assert table.read_text().count("\n") == 1 + 2 * 9


def test_single_seed_sentence_and_absent_advantage(tmp_path):
    from workflow_lib.report.run import report_step

    tree = write_results_tree(tmp_path, seeds=[0])
    (tree.results_dir / "digits" / "search_advantage" / "seed0" / "advantage.json").unlink()
    out = tmp_path / "out" / "report.html"
    plan = {"datasets": {"kirigami": {"methods": METHODS, "search": True, "search_advantage": True},
                         "digits": {"methods": METHODS, "search": True, "search_advantage": True}}}
    report_step(tree.results_dir, ["kirigami", "digits"], [0], out, "One seed", plan=plan)
    html = out.read_text()
    assert _advantage_sentence(html, "kirigami") == (
        "Search advantage: the found cell beat 7 of 8 random cells of the same space (percentile 88; test R² "
        "0.9570 vs random 0.9519 ± 0.0043, relative improvement +0.5%), all trained with the same 3-epoch "
        "protocol (1,000 training samples; at most 10 steps per epoch; the final training runs 10 epochs).")
    assert "not available (advantage.json is missing" in _advantage_sentence(html, "digits")
    assert "search advantage seed 0: missing" in html and 'id="advantage-table-digits"' not in html
    plan["datasets"]["digits"] = {"methods": METHODS, "search": False, "search_advantage": False}
    report_step(tree.results_dir, ["kirigami", "digits"], [0], out, "Search off", plan=plan)
    assert "not measured for this dataset" in _advantage_sentence(out.read_text(), "digits")


# --------------------------------------------------------------------------- self-contained page

def test_page_is_self_contained(rep):
    html = rep.html
    assert not re.search(r'<(?:script|img|iframe|link|source)[^>]+(?:src|href)="(?!data:)', html)
    assert "<link" not in html and "@import" not in html
    refs = re.findall(r'(?:src|href)="([^"#][^"]*)"', html)
    assert all(r.startswith("data:") for r in refs), [r for r in refs if not r.startswith("data:")][:5]
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == html.count("<img ")
    for data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    # one inline graphviz SVG per cell type per dataset per seed, ids made unique
    assert html.count('<div class="svg-wrap"><svg') == 2 * 2 * len(rep.tree.seeds)
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "duplicate element ids"
    assert "<?xml" not in html and "<!DOCTYPE svg" not in html


def test_cells_are_drawn_with_labelled_edges(rep):
    genotype = json.loads((rep.tree.results_dir / "kirigami" / "search" / "seed0" / "genotype.json").read_text())
    svg = html_mod.unescape((rep.figures_dir / "kirigami" / "cells" / "seed0_normal.svg").read_text())
    for node in ("c_{k-2}", "c_{k-1}", "c_{k}", ">0<", ">3<"):
        assert node in svg, node
    for op, _ in genotype["normal"]:
        assert op in svg


# ------------------------------------------------------------------------------- figures manifest

def test_figures_manifest_lists_every_written_file(rep):
    manifest = json.loads((rep.figures_dir / "manifest.json").read_text())
    assert manifest == json.loads(json.dumps(rep.manifest))
    paths = {f["path"] for f in manifest["figures"]}
    expected = {"_all/comparison/sparsity.png"}
    for name in rep.tree.datasets:
        expected |= {f"{name}/curves/search.png", f"{name}/curves/training.png", f"{name}/sparsity/weights.png",
                     f"{name}/sparsity/entropy.png", f"{name}/sparsity/skip_count.png",
                     f"{name}/advantage/strip.png", f"{name}/diagnostics/hessian.png"}
        for seed in rep.tree.seeds:
            expected |= {f"{name}/cells/seed{seed}_normal.svg", f"{name}/cells/seed{seed}_reduce.svg",
                         f"{name}/genotype/seed{seed}.png"}
    expected |= {f"kirigami/parity/{m}.png" for m in METHODS} | {"digits/confusion/best.png"}
    assert paths == expected
    on_disk = {p.relative_to(rep.figures_dir).as_posix() for p in rep.figures_dir.rglob("*")
               if p.is_file() and p.suffix in (".png", ".svg")}
    assert on_disk == expected
    for entry in manifest["figures"]:
        assert Path(entry["file"]).stat().st_size > 200
        assert (Path(__file__).resolve().parents[1] / entry["caption"]).exists(), entry["caption"]
    for table in manifest["tables"]:
        assert Path(table["file"]).read_text().count("\n") >= 1
    diagnostics = (rep.figures_dir / "digits" / "tables" / "search_diagnostics.csv").read_text().splitlines()
    assert diagnostics[0].startswith("seed,stop,conclusive,verdict") and len(diagnostics) == 1 + len(rep.tree.seeds)
    assert not list(rep.html_path.parent.glob(".report.html.*")), "temporary file left behind"


def test_captions_exist_for_each_figure_kind():
    captions = Path(__file__).resolve().parents[1] / "report" / "captions"
    for kind in ("cells", "curves", "sparsity", "parity", "confusion", "genotype", "comparison", "advantage",
                 "results_table", "tables", "page", "figures", "diagnostics"):
        assert (captions / f"{kind}.rst").read_text().strip(), kind


# ----------------------------------------------------------------------------- robustness / units

def test_missing_artifacts_are_listed_not_fatal(tmp_path):
    from workflow_lib.report.run import report_step

    tree = write_results_tree(tmp_path, seeds=[0])
    (tree.results_dir / "digits" / "search" / "seed0" / "alphas.npz").unlink()
    (tree.results_dir / "digits" / "methods" / "resnet18" / "seed0" / "metrics.json").unlink()
    (tree.results_dir / "kirigami" / "methods" / "darts" / "seed0" / "predictions.csv").unlink()
    out = tmp_path / "out" / "report.html"
    manifest = report_step(tree.results_dir, ["kirigami", "digits", "absent"], [0, 7], out, "Partial")
    html = out.read_text()
    assert 'id="ds-absent"' in html and "prepared data: missing" in html
    assert "resnet18 seed 0 metrics: missing" in html and "search seed 0 alphas: missing" in html
    assert 'id="no-stage-times"' in html
    assert 'data-method="resnet18"' not in _table(html, "results-digits")
    assert any(f["path"] == "kirigami/parity/darts.png" for f in manifest["figures"])


def test_benchmark_paths_and_seconds(tmp_path):
    assert C.parse_benchmark_path(Path("benchmarks/kirigami/train_darts_seed0.tsv")) == ("kirigami", "train")
    assert C.parse_benchmark_path(Path("/x/benchmarks/d1/random_forest_seed3.tsv")) == ("d1", "random_forest")
    assert C.parse_benchmark_path(Path("benchmarks/d1/prepare.tsv")) == ("d1", "prepare")
    assert C.parse_benchmark_path(Path("benchmarks/d1/search/seed0.tsv")) == ("d1", "search")
    assert C.parse_benchmark_path(Path("benchmarks/d1/custom_step.7.tsv")) == ("d1", "custom_step")
    bench = tmp_path / "b.tsv"
    bench.write_text("s\th:m:s\tmax_rss\n10.0\t0:00:10\t1\n20.0\t0:00:20\t1\n")
    assert C.read_benchmark_seconds(bench) == 15.0
    times, notes = C.collect_stage_times([bench, tmp_path / "nope.tsv"])
    assert [t.seconds for t in times] == [15.0] and "missing" in notes[0]


def test_units_and_formatting():
    info = C.DatasetInfo(name="k", target="yield_stress", provenance={"source": "md"})
    assert info.unit == "GPa"
    assert C.DatasetInfo(name="k", target="yield_stress", provenance={"source": "surrogate"}).unit \
        == "surrogate model units"
    assert C.DatasetInfo(name="k", target="yield_strain", provenance={"units": {"yield_strain": "%"}}).unit == "%"
    assert R.fmt_num(0.123456) == "0.1235" and R.fmt_num(float("nan")) == "n/a" and R.fmt_num(None) == "n/a"
    assert R.fmt_params(11_172_342) == "11.17 M" and R.fmt_seconds(7200) == "2.00 h"
    mean, std, n = R.mean_std([1.0, 3.0, float("nan")])
    assert (mean, n) == (2.0, 2) and std == pytest.approx(math.sqrt(2))


def test_single_run_figures_pick_the_seed_by_search_val_never_by_test():
    from workflow_lib.report.collect import DatasetInfo, DatasetResults, MethodRun, SearchRun
    from workflow_lib.report.render import shown_run

    def method_run(seed, accuracy):
        return MethodRun("darts", seed, {"test": {"accuracy": accuracy}}, [], None)

    def search(seed, val):
        return SearchRun(seed, [], "accuracy", [{"val_metric": val}], 1.0, None, None, None, {})

    ds = DatasetResults("d", DatasetInfo("d", task="classification"),
                        searches={0: search(0, 0.9), 1: search(1, 0.7)},
                        methods={"resnet18": {0: MethodRun("resnet18", 0, {"test": {"accuracy": 0.99}}, [], None)},
                                 "darts": {0: method_run(0, 0.5), 1: method_run(1, 0.95)}})
    run = shown_run(ds)
    assert (run.method, run.seed) == ("darts", 0)  # best search-val, although seed 1 tests better
