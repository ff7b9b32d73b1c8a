"""The real Snakemake workflow on the quick offline default, in a temporary directory."""

from __future__ import annotations

import json
import zipfile

import pytest

from workflow_helpers import ROOT, default_config, planned_jobs, run_snakemake, write_config

pytestmark = pytest.mark.workflow

METHODS = ["darts", "random_forest", "resnet18", "tiny_resnet", "random_search"]


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory):
    """One end-to-end run of the tiny test config, shared by the tests below."""
    workdir = tmp_path_factory.mktemp("quick_run")
    run_snakemake(workdir, "--cores", "2")
    return workdir


def test_quick_default_produces_every_artifact(quick_run):
    for dataset in ("kirigami", "digits"):
        summary = json.loads((quick_run / "results" / dataset / "summary.json").read_text())
        assert sorted(summary["methods"]) == sorted(METHODS)
        search = quick_run / "results" / dataset / "search" / "seed0"
        for name in ("genotype.json", "history.json", "alphas.npz", "supernet.pt", "run_info.json"):
            assert (search / name).stat().st_size > 0
        for method in METHODS:
            metrics = json.loads((quick_run / "results" / dataset / "methods" / method / "seed0" / "metrics.json").read_text())
            assert metrics["method"] == method and metrics["dataset"] == dataset
            assert metrics["parameters"] > 0
        advantage = summary["search_advantage"]
        assert len(advantage["random_scores"]) == advantage["n"] >= 8 and 0 <= advantage["percentile"] <= 100
        assert advantage["protocol"]["scored_on"] == "test"
        assert (quick_run / "results" / dataset / "search_advantage" / "seed0" / "run_info.json").exists()
        assert (quick_run / "results" / "benchmarks" / dataset / "search_advantage_seed0.tsv").exists()
        assert (quick_run / "logs" / dataset / "search_seed0.log").stat().st_size > 0
        assert (quick_run / "results" / "benchmarks" / dataset / "search_seed0.tsv").exists()
    # search diagnostics (tests/config/tiny.yaml): kirigami's eigenvalue after epoch 1, a stop rule that may fire
    history = json.loads((quick_run / "results" / "kirigami" / "search" / "seed0" / "history.json").read_text())
    assert history["epochs"][0]["hessian_eigenvalue"] is not None and history["budget"]["hessian_evaluations"] >= 1
    assert history["stop_reason"] == "max_epochs" or history["stop_rule"] == "stable_genotype"
    assert isinstance(history["conclusive"], bool) and history["conclusive_reason"]
    digits = json.loads((quick_run / "results" / "digits" / "search" / "seed0" / "history.json").read_text())
    assert all(e["hessian_eigenvalue"] is None for e in digits["epochs"])
    design = json.loads((quick_run / "results" / "kirigami" / "design" / "design.json").read_text())
    assert {run["picker"] for run in design["runs"]} == {"random_forest", "random_forest_ei", "tiny_resnet", "random"}
    assert all(run["simulations"] == run["distinct"] == 60 for run in design["runs"])
    curves = json.loads((quick_run / "results" / "kirigami" / "learning_curves" / "learning_curves.json").read_text())
    assert {p["method"] for p in curves["points"]} == {"random_forest", "tiny_resnet"}
    prepared = json.loads((quick_run / "results" / "kirigami" / "data" / "prepared.json").read_text())
    assert prepared["provenance"]["source"] == "surrogate"
    html = (quick_run / "results" / "report.html").read_text()
    assert "surrogate" in html.lower() and "digits" in html
    assert 'id="design-kirigami"' in html and "Learning curves" in html and "published" in html
    assert 'id="advantage-kirigami">Search advantage: ' in html and 'id="advantage-table-digits"' in html
    assert 'id="diagnostics-kirigami"' in html and "Did the search find anything?" in html


def test_search_log_reports_rate_and_eta(quick_run):
    log = (quick_run / "logs" / "kirigami" / "search_seed0.log").read_text()
    assert "epoch 1/" in log and ("steps/s" in log or "s/step" in log) and "ETA" in log


def test_rerun_has_nothing_to_do(quick_run):
    result = run_snakemake(quick_run, "-n", "--cores", "2")
    assert planned_jobs(result.stdout + result.stderr) == {}


def test_changing_one_dataset_reruns_only_that_dataset(quick_run, tmp_path):
    config = default_config()
    config["datasets"]["digits"]["train"]["epochs"] += 1
    result = run_snakemake(quick_run, "-n", "--cores", "2", configfile=write_config(tmp_path / "c.yaml", config))
    jobs = planned_jobs(result.stdout + result.stderr)
    assert jobs.get("train") == 1 and jobs.get("random_search") == 1
    assert "search" not in jobs and "prepare" not in jobs and "baseline_cnn" not in jobs
    assert "kirigami" not in "".join(line for line in result.stdout.splitlines() if "wildcards:" in line)


def test_snakemake_report_zip(quick_run):
    run_snakemake(quick_run, "--cores", "1", "--report", "report.zip")
    with zipfile.ZipFile(quick_run / "report.zip") as archive:
        names = archive.namelist()
    assert any(name.endswith("report.html") for name in names)
    assert any(name.endswith(".svg") for name in names) and any(name.endswith(".png") for name in names)


def test_one_dataset_target_runs_only_that_dataset(tmp_path):
    result = run_snakemake(tmp_path, "-n", "--cores", "2", "digits")
    plan = result.stdout + result.stderr
    assert "dataset=digits" in plan and "dataset=kirigami" not in plan
    assert planned_jobs(plan)["search"] == 1


def test_bad_config_stops_before_any_job(tmp_path):
    config = default_config()
    config["datasets"]["kirigami"]["search"]["layers"] = 1
    result = run_snakemake(tmp_path, "--cores", "1", configfile=write_config(tmp_path / "bad.yaml", config),
                           check=False)
    assert result.returncode != 0
    assert "datasets.kirigami.search.layers" in result.stderr + result.stdout
    assert not (tmp_path / "results").exists()


def test_lint_is_clean(tmp_path):
    result = run_snakemake(tmp_path, "--lint", check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_snakefmt_clean():
    import subprocess
    import sys
    from pathlib import Path

    snakefmt = Path(sys.executable).parent / "snakefmt"
    result = subprocess.run([str(snakefmt), "--check", "Snakefile", "rules"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_quick_report_in_headless_browser(quick_run):
    """The report of the real quick run loads in Chromium: no errors, every image decodes; screenshot saved."""
    import os
    from pathlib import Path

    import browser

    try:
        chromium = browser.ensure_chromium(install=True)
    except browser.BrowserUnavailable as error:
        pytest.skip(f"headless browser check needs chromium: {error}")
    html = quick_run / "results" / "report.html"
    check = browser.check_page(html, chromium)
    assert check.errors == [] and check.resources == [] and check.broken == []
    assert check.images > 0 and check.svgs > 0 and check.empty_svgs == 0
    artifacts = Path(os.environ.get("REPORT_ARTIFACTS_DIR", ROOT / "tests" / "artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    browser.screenshot(html, artifacts / "quick_run_report.png", chromium)
    assert (artifacts / "quick_run_report.png").stat().st_size > 10_000
