"""Results never come from stale inputs: one rerun mechanism (Snakemake's params, inputs and mtimes) and
checkpoints whose fingerprint covers everything their result depends on. One test per defect of the issue
that asked for it, each on the real Snakemake workflow or the real step code."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from workflow_helpers import ROOT, SNAKEMAKE, planned_jobs, snakemake_env
from workflow_lib.engine.loop import EpochLoop
from workflow_lib.io import torch_save_atomic

pytestmark = pytest.mark.workflow


def write_dataset(path: Path, scale: float = 1.0) -> Path:
    rng = np.random.default_rng(0)
    x = rng.random((60, 1, 8, 8), dtype=np.float32)
    y = scale * x[:, 0, :4].mean(axis=(1, 2)) + 0.1 * rng.standard_normal(60)
    with open(path, "wb") as handle:
        np.savez(handle, x=x, y=y)
    return path


def small_config(workdir: Path, split_seed: int = 42, **device) -> dict:
    return {
        "device": {"type": "cpu", **device},
        "datasets": {"mine": {
            "kind": "npz",
            "source": {"path": str(workdir / "mine.npz"), "task": "regression"},
            "split": {"seed": split_seed},
            "methods": ["darts", "tiny_resnet", "random_forest"],
            "train": {"genotype": "DARTS_V2", "epochs": 2, "batch_size": 16, "C": 4, "layers": 3,
                      "auxiliary": False},
            "baselines": {"tiny_resnet": {"epochs": 2, "batch_size": 16},
                          "random_forest": {"n_estimators": 10}},
            "resources": {"threads": 1},
        }},
    }


def snakemake(workdir: Path, config: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    configfile = workdir / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    command = [*SNAKEMAKE, *args, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
               "--cores", "2", "--configfile", str(configfile)]
    result = subprocess.run(command, capture_output=True, text=True, env=snakemake_env(), timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(result.stdout[-4000:] + result.stderr[-4000:])
    return result


def method_metrics(workdir: Path, method: str) -> dict:
    return json.loads((workdir / "results" / "mine" / "methods" / method / "seed0" / "metrics.json").read_text())["test"]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("reruns")
    write_dataset(workdir / "mine.npz")
    snakemake(workdir, small_config(workdir), "mine")
    return workdir


def test_changed_split_never_resumes_old_checkpoints(first_run, tmp_path):
    """Defect 1: split.seed 42 -> 7 used to log "resumed at epoch 2/2" and score old models on the new test set."""
    snakemake(first_run, small_config(first_run, split_seed=7), "mine")
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    write_dataset(fresh / "mine.npz")
    snakemake(fresh, small_config(fresh, split_seed=7), "mine")
    for method in ("darts", "tiny_resnet", "random_forest"):
        assert method_metrics(first_run, method) == method_metrics(fresh, method), method
    log = (first_run / "logs" / "mine" / "tiny_resnet_seed0.log").read_text()
    assert "resumed" not in log and "written for other settings or data" in log
    snakemake(first_run, small_config(first_run), "mine")  # back to the module's state


def test_editing_the_data_file_in_place_reruns_its_chain(first_run):
    """Defect 2: raw_data depended on the stage config only, so an edited file was never seen."""
    data = first_run / "mine.npz"
    original = data.read_bytes()
    try:
        write_dataset(data, scale=2.0)
        jobs = planned_jobs(snakemake(first_run, small_config(first_run), "-n", "mine").stdout)
        assert jobs.get("raw_data") == 1 and jobs.get("prepare") == 1 and jobs.get("train") == 1
    finally:
        data.write_bytes(original)
        snakemake(first_run, small_config(first_run), "mine")


def test_device_change_reruns_only_the_neural_steps(first_run):
    """Defect 4: device sat in every stage config, so changing it reran data preparation and the random forest."""
    jobs = planned_jobs(snakemake(first_run, small_config(first_run, threads=1), "-n", "mine").stdout)
    assert jobs.get("train") == 1 and jobs.get("baseline_cnn") == 1
    assert "prepare" not in jobs and "raw_data" not in jobs and "random_forest" not in jobs


def test_named_genotype_runs_no_search(first_run):
    """Defect 4: a named genotype still ran the full DARTS search it does not use."""
    assert not (first_run / "results" / "mine" / "search").exists()
    assert "search" not in planned_jobs(snakemake(first_run, small_config(first_run), "-n", "-F", "mine").stdout)


def test_rerun_is_a_noop_and_jobs_need_no_stage_config(first_run):
    """One mechanism: no stage_config jobs or config/ slices; a rerun of the same config does nothing."""
    result = snakemake(first_run, small_config(first_run), "-n", "mine")
    assert planned_jobs(result.stdout) == {}
    assert not (first_run / "results" / "mine" / "config").exists()


def test_benchmarks_live_under_the_results_dir(first_run):
    """Defect 5: benchmarks/ sat at the repository root and mixed configs."""
    assert (first_run / "results" / "benchmarks" / "mine" / "tiny_resnet_seed0.tsv").exists()
    assert not (first_run / "benchmarks").exists()


def test_report_shows_only_this_configs_methods(first_run, tmp_path):
    """Defect 5: the report listed methods from the folders on disk, so another config's results leaked in."""
    config = small_config(first_run)
    config["datasets"]["mine"]["methods"] = ["random_forest"]
    config["report"] = {"title": "RF only"}
    snakemake(first_run, config, "report")
    html = (first_run / "results" / "report.html").read_text()
    assert "Tiny ResNet" not in html and "tiny_resnet" not in html
    assert "Random forest" in html or "random_forest" in html
    snakemake(first_run, small_config(first_run), "mine")


def test_corrupt_checkpoint_starts_afresh_and_says_which(first_run, tmp_path):
    """Defect 3: a truncated checkpoint gave a raw torch traceback, three retries, and no fresh start."""
    checkpoint = first_run / "checkpoints" / "mine" / "tiny_resnet" / "seed0" / "ckpt.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    before = method_metrics(first_run, "tiny_resnet")
    snakemake(first_run, small_config(first_run), "mine", "-R", "baseline_cnn")
    log = (first_run / "logs" / "mine" / "tiny_resnet_seed0.log").read_text()
    assert f"checkpoint {checkpoint.relative_to(first_run)} is unreadable" in log and "starting afresh" in log
    assert method_metrics(first_run, "tiny_resnet") == before  # a fresh start gives the same numbers on the CPU


def test_epoch_loop_moves_an_unreadable_checkpoint_aside(tmp_path):
    path = tmp_path / "ckpt.pt"
    path.write_bytes(b"PK\x03\x04 not a checkpoint")
    model = torch.nn.Linear(2, 1)
    messages: list[str] = []
    loop = EpochLoop(path, {"model": model}, total_epochs=1, log=messages.append)
    loop.run(lambda epoch: {"steps": 0})
    assert any(str(path) in m and "unreadable" in m for m in messages)
    assert (tmp_path / "ckpt.pt.unusable").exists() and loop.resumed_from == 0 and loop.epoch == 1


def test_saved_torch_files_are_byte_identical(tmp_path):
    """Smaller defect: the temporary file name ended up inside every .pt archive."""
    state = torch.nn.Linear(3, 2).state_dict()
    torch_save_atomic(tmp_path / "a.pt", state)
    torch_save_atomic(tmp_path / "b.pt", state)
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
