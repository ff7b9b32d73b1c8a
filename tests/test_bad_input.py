"""Bad input gets one clear error that names what and where, and loses nothing.

Every case asserts the exit status, that the message names the problem and its place (file, line, column,
config key or path), and that an earlier result at the output location is untouched (same bytes, same mtime)
with nothing half-written beside it. Step-level cases run the real command line (``python -m
workflow_lib``); config cases run the real Snakemake, which must stop before any job starts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from fakes.cifar10 import write_fake_cifar10
from fakes.malicious import write_malicious
from workflow_helpers import ROOT, SNAKEMAKE, snakemake_env
from workflow_lib.config import load_config, stage_json
from workflow_lib.darts.genotypes import GENOTYPES
from workflow_lib.datasets.prepared import PreparedData

PATTERN = ["1"] * 15
GOOD_ROW = " ".join(PATTERN + ["0.2", "1.0", "5.0"])
ROW_2 = " ".join(["0"] + ["1"] * 14 + ["0.1", "0.5", "3.0"])


# ------------------------------------------------------------------------------------------- helpers
def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workflow_lib", *args], capture_output=True, text=True,
                          timeout=300)


def settings(block: dict, step: str, device: dict | None = None) -> str:
    config = load_config({"datasets": {"toy": block}, "device": device or {}})
    return stage_json(config, "toy", step)


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def earlier_result(folder: Path, name: str = "metrics.json") -> dict[str, tuple[bytes, int]]:
    """A previous run's output where the failing step would write; returns its snapshot."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text('{"earlier": true}\n')
    return snapshot(folder)


def last_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    return lines[-1] if lines else ""


def tiny_prepared(path: Path, task: str = "classification") -> Path:
    n = 12
    x = np.random.default_rng(0).random((n, 1, 8, 8), dtype=np.float32)
    y = np.arange(n) % 2 if task == "classification" else np.linspace(0.1, 1.0, n)
    PreparedData(x=x, y=y, task=task, split=np.array([0, 1, 2] * 4, np.int8),
                 class_names=("a", "b") if task == "classification" else ()).save(path)
    return path


def write_npz(path: Path, **arrays) -> Path:
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    return path


# ------------------------------------------------------------------------------ raw data through fetch
def kirigami_file(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "15grid_shuffled.dat"
    path.write_text("".join(line + "\n" for line in lines))
    return path


KIRIGAMI_CASES = {
    "pattern value not 0/1": ([GOOD_ROW, " ".join(["1"] * 14 + ["2", "0.2", "1.0", "5.0"])], [":2", "column 14",
                                                                                                "must be 0 or 1"]),
    "wrong column count": ([GOOD_ROW, " ".join(["1"] * 14 + ["0.2", "1.0", "5.0"])], [":2", "expected 18 columns"]),
    "not a number": ([" ".join(PATTERN + ["abc", "1.0", "5.0"])], [":1", "column 15", "not a number"]),
    "negative yield strain": ([" ".join(PATTERN + ["-0.2", "1.0", "5.0"])], [":1", "column 15",
                                                                            "yield_strain must be >= 0"]),
    "infinite toughness": ([" ".join(PATTERN + ["0.2", "inf", "5.0"])], [":1", "column 16", "not finite"]),
    "duplicate pattern": ([GOOD_ROW, ROW_2, GOOD_ROW], [":3", "duplicate pattern", "line 1"]),
    "coarse row entirely cut": ([" ".join(["0"] * 5 + ["1"] * 10 + ["0.2", "1.0", "5.0"])], [":1",
                                                                                          "coarse row 0"]),
    "empty file": ([""], ["empty file"]),
}


@pytest.mark.parametrize("case", sorted(KIRIGAMI_CASES))
def test_malformed_kirigami_file(tmp_path, case):
    lines, fragments = KIRIGAMI_CASES[case]
    bad = kirigami_file(tmp_path, *lines)
    out = tmp_path / "raw"
    before = earlier_result(out, "manifest.json")
    result = run_cli("fetch", "--settings", settings({"kind": "kirigami", "source": {"type": "md", "path": str(bad)}},
                                                     "raw_data"), "--out", str(out / "manifest.json"))
    assert result.returncode == 2, result.stderr
    message = last_line(result)
    assert message.startswith("error in step 'fetch':") and str(bad) in message
    for fragment in fragments:
        assert fragment in message, message
    assert snapshot(out) == before


NPZ_CASES = {
    "missing key y": (lambda: {"x": np.zeros((4, 1, 2, 2))}, ["required key 'y' is missing"]),
    "x not 4-D": (lambda: {"x": np.zeros((4, 2, 2)), "y": np.zeros(4)}, ["key 'x' must have 4 dimensions"]),
    "NaN in x": (lambda: {"x": np.full((4, 1, 2, 2), np.nan), "y": np.zeros(4)}, ["key 'x' holds 16 non-finite"]),
    "x and y lengths differ": (lambda: {"x": np.zeros((4, 1, 2, 2)), "y": np.zeros(3)}, ["has 4 samples",
                                                                                       "'y' has 3"]),
    "non-integer labels": (lambda: {"x": np.zeros((4, 1, 2, 2)), "y": np.array([0, 1.5, 1, 0])},
                           ["integer class labels", "index 1"]),
    "object array": (lambda: {"x": np.array([None] * 4, dtype=object), "y": np.zeros(4)}, ["not a readable .npz"]),
}


@pytest.mark.parametrize("case", sorted(NPZ_CASES))
def test_malformed_npz_file(tmp_path, case):
    make, fragments = NPZ_CASES[case]
    bad = write_npz(tmp_path / "mine.npz", **make())
    out = tmp_path / "raw"
    before = earlier_result(out, "manifest.json")
    result = run_cli("fetch", "--settings", settings({"kind": "npz", "source": {"path": str(bad)}}, "raw_data"),
                     "--out", str(out / "manifest.json"))
    assert result.returncode == 2, result.stderr
    message = last_line(result)
    assert str(bad) in message, message
    for fragment in fragments:
        assert fragment in message, message
    assert snapshot(out) == before


def test_npz_that_is_not_a_zip(tmp_path):
    bad = tmp_path / "mine.npz"
    bad.write_bytes(b"this is not numpy data")
    out = tmp_path / "raw"
    before = earlier_result(out, "manifest.json")
    result = run_cli("fetch", "--settings", settings({"kind": "npz", "source": {"path": str(bad)}}, "raw_data"),
                     "--out", str(out / "manifest.json"))
    assert result.returncode == 2 and str(bad) in last_line(result) and "not a readable .npz" in last_line(result)
    assert snapshot(out) == before


def test_md_data_missing_offline(tmp_path):
    out = tmp_path / "raw"
    before = earlier_result(out, "manifest.json")
    block = {"kind": "kirigami", "source": {"type": "md", "download": False, "url": "http://127.0.0.1:9/x.dat"}}
    result = run_cli("fetch", "--settings", settings(block, "raw_data"), "--out", str(out / "manifest.json"))
    message = last_line(result)
    assert result.returncode == 2 and "http://127.0.0.1:9/x.dat" in message
    assert str(out / "15grid_shuffled.dat") in message and "source.path" in message
    assert snapshot(out) == before


def test_cifar10_missing_offline(tmp_path):
    out = tmp_path / "raw"
    before = earlier_result(out, "manifest.json")
    block = {"kind": "cifar10", "source": {"path": str(tmp_path / "nowhere"), "download": False}}
    result = run_cli("fetch", "--settings", settings(block, "raw_data"), "--out", str(out / "manifest.json"))
    message = last_line(result)
    assert result.returncode == 2 and str(tmp_path / "nowhere" / "cifar-10-batches-py") in message
    assert "download is false" in message
    assert snapshot(out) == before


def test_raw_file_changed_after_fetch(tmp_path):
    data = write_npz(tmp_path / "mine.npz", x=np.zeros((10, 1, 2, 2)), y=np.arange(10) % 2)
    block = {"kind": "npz", "source": {"path": str(data)}}
    manifest = tmp_path / "raw" / "manifest.json"
    assert run_cli("fetch", "--settings", settings(block, "raw_data"), "--out", str(manifest)).returncode == 0
    write_npz(data, x=np.ones((10, 1, 2, 2)), y=np.arange(10) % 2)
    out = tmp_path / "data"
    before = earlier_result(out, "prepared.npz")
    result = run_cli("prepare", "--settings", settings(block, "prepare"), "--manifest", str(manifest),
                     "--out", str(out / "prepared.npz"))
    assert result.returncode == 2 and str(data) in last_line(result) and "changed since it was fetched" in last_line(
        result)
    assert snapshot(out) == before


# ---------------------------------------------------------------------------------- training steps
def run_step(step: str, tmp_path: Path, data: Path, block: dict, *extra: str, device: dict | None = None):
    name = {"baseline": "tiny_resnet"}.get(step, step)
    args = [step, "--settings", settings(block, name, device), "--data", str(data), "--out",
            str(tmp_path / "out"), "--checkpoint-dir", str(tmp_path / "ckpt"), "--seed", "0", *extra]
    if step == "baseline":
        args += ["--method", "tiny_resnet"]
    return run_cli(*args)


def test_prepared_data_missing(tmp_path):
    before = earlier_result(tmp_path / "out")
    result = run_step("train", tmp_path, tmp_path / "absent.npz", {"kind": "digits", "train": {"genotype": "DARTS_V2"}})
    assert result.returncode == 2 and str(tmp_path / "absent.npz") in last_line(result)
    assert "does not exist" in last_line(result)
    assert snapshot(tmp_path / "out") == before


def test_prepared_data_corrupt(tmp_path):
    corrupt = tmp_path / "prepared.npz"
    corrupt.write_bytes(b"PK\x03\x04 truncated")
    before = earlier_result(tmp_path / "out")
    result = run_step("baseline", tmp_path, corrupt, {"kind": "digits"})
    assert result.returncode == 2 and str(corrupt) in last_line(result) and "corrupt" in last_line(result)
    assert snapshot(tmp_path / "out") == before


def test_malformed_genotype_file(tmp_path):
    data = tiny_prepared(tmp_path / "prepared.npz")
    genotype = tmp_path / "genotype.json"
    genotype.write_text(json.dumps({"normal": [["conv_9x9", 0]] * 8, "normal_concat": [2, 3, 4, 5],
                                    "reduce": [["skip_connect", 0]] * 8, "reduce_concat": [2, 3, 4, 5]}))
    before = earlier_result(tmp_path / "out")
    result = run_step("train", tmp_path, data, {"kind": "digits"}, "--genotype", str(genotype))
    message = last_line(result)
    assert result.returncode == 2 and str(genotype) in message and "unknown op 'conv_9x9'" in message
    assert "normal[0]" in message
    assert snapshot(tmp_path / "out") == before


def test_cuda_without_gpu_in_a_job(tmp_path):
    data = tiny_prepared(tmp_path / "prepared.npz")
    before = earlier_result(tmp_path / "out", "genotype.json")
    result = run_step("search", tmp_path, data, {"kind": "digits"}, device={"type": "cuda"})
    assert result.returncode == 2
    assert "device.type is 'cuda' but no CUDA GPU is visible" in last_line(result)
    assert "allow_cpu_fallback" in last_line(result)
    assert snapshot(tmp_path / "out") == before


def test_step_settings_not_json(tmp_path):
    data = tiny_prepared(tmp_path / "prepared.npz")
    before = earlier_result(tmp_path / "out")
    result = run_cli("train", "--settings", "{not json", "--data", str(data), "--out", str(tmp_path / "out"),
                     "--checkpoint-dir", str(tmp_path / "ckpt"), "--seed", "0")
    assert result.returncode == 2 and "step settings are not valid JSON" in last_line(result)
    assert snapshot(tmp_path / "out") == before


# ------------------------------------------------------------------- config errors through Snakemake
@pytest.fixture
def workdir(tmp_path):
    """A working directory holding an earlier run's results and a small npz dataset."""
    write_npz(tmp_path / "mine.npz", x=np.zeros((30, 1, 4, 4)), y=np.arange(30) % 3)
    (tmp_path / "results" / "mine").mkdir(parents=True)
    (tmp_path / "results" / "mine" / "summary.json").write_text('{"earlier": true}\n')
    return tmp_path


def base_config(workdir: Path) -> dict:
    return {"datasets": {"mine": {"kind": "npz", "source": {"path": str(workdir / "mine.npz")}}}}


def snakemake(workdir: Path, *args: str, configfile: Path | None = None) -> subprocess.CompletedProcess:
    command = [*SNAKEMAKE, *args, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir), "--cores", "1",
               *(["--configfile", str(configfile)] if configfile else [])]
    return subprocess.run(command, capture_output=True, text=True, env=snakemake_env(), timeout=300)


def mutate(config: dict, change: str) -> dict:
    block = config["datasets"]["mine"]
    if change == "typo":
        block["serach"] = {}
    elif change == "layers":
        block["search"] = {"layers": 1}
    elif change == "genotype":
        block["train"] = {"genotype": "DARTS_V3"}
    elif change == "source type":
        block.update(kind="kirigami", source={"type": "sklearn"})
    elif change == "npz without path":
        block["source"] = {}
    elif change == "npz file missing":
        block["source"]["path"] = "/nowhere/mine.npz"
    elif change == "reserved name":
        config["datasets"] = {"report": block}
    elif change == "unknown method":
        block["methods"] = ["darts", "xgboost"]
    elif change == "no seeds":
        config["seeds"] = []
    elif change == "cuda":
        config["device"] = {"type": "cuda"}
    elif change == "duplicate seeds":
        config["seeds"] = [0, 0]
    elif change == "duplicate design seeds":
        block["design"] = {"seeds": [1, 1]}
    elif change == "duplicate learning-curve seeds":
        block["learning_curves"] = {"seeds": [2, 3, 2]}
    elif change == "stride larger than the npz images":  # 4x4 images, read from the file's header
        block["search"] = {"input_stride": [64, 64]}
    elif change == "stride larger than the digits images":
        block.update(kind="digits", source={})
        block["baselines"] = {"resnet18": {"input_stride": [1, 9]}}
    elif change == "stride larger than the kirigami images":
        block.update(kind="kirigami", source={"type": "surrogate"}, pad_rows=0)
        block["design"] = {"input_stride": [31, 16]}
    elif change in ("results_dir is a file", "checkpoint_dir is a file", "log_dir is a file"):
        config[change.split()[0]] = "mine.npz"  # the data file of the working directory
    return config


CONFIG_CASES = {
    "typo": "config key 'datasets.mine': Additional properties are not allowed ('serach' was unexpected)",
    "layers": "config key 'datasets.mine.search.layers': 1 is less than the minimum of 3",
    "genotype": "config key 'datasets.mine.train.genotype': unknown genotype 'DARTS_V3'",
    "source type": "config key 'datasets.mine.source.type': 'sklearn' is not one of",
    "npz without path": "config key 'datasets.mine.source.path': an npz dataset needs the path",
    "npz file missing": "config key 'datasets.mine.source.path': data file /nowhere/mine.npz does not exist",
    "reserved name": "dataset name(s) ['report'] clash",
    "unknown method": "config key 'datasets.mine.methods.1': 'xgboost' is not one of",
    "no seeds": "config key 'seeds': [] should be non-empty",
    "cuda": "config key 'device.type': 'cuda' but no CUDA GPU is visible",
    "duplicate seeds": "config key 'seeds': [0, 0] has non-unique elements",
    "duplicate design seeds": "config key 'datasets.mine.design.seeds': [1, 1] has non-unique elements",
    "duplicate learning-curve seeds": "config key 'datasets.mine.learning_curves.seeds': [2, 3, 2] has non-unique",
    "stride larger than the npz images": "config key 'datasets.mine.search.input_stride': input_stride [64, 64] is "
                                         "larger than the 4x4 images",
    "stride larger than the digits images": "config key 'datasets.mine.baselines.resnet18.input_stride': input_stride "
                                            "[1, 9] is larger than the 8x8 images",
    "stride larger than the kirigami images": "config key 'datasets.mine.design.input_stride': input_stride [31, 16] "
                                              "is larger than the 30x80 images",
    "results_dir is a file": "config key 'results_dir': mine.npz is a file, not a folder",
    "checkpoint_dir is a file": "config key 'checkpoint_dir': mine.npz is a file, not a folder",
    "log_dir is a file": "config key 'log_dir': mine.npz is a file, not a folder",
}


@pytest.mark.parametrize("change", sorted(CONFIG_CASES))
def test_bad_config_stops_before_any_job(workdir, change):
    if change == "cuda":
        import torch

        if torch.cuda.is_available():
            pytest.skip("a GPU is visible")
    configfile = workdir / f"bad {change}.yaml"
    configfile.write_text(yaml.safe_dump(mutate(base_config(workdir), change)))
    before = snapshot(workdir / "results")
    result = snakemake(workdir, configfile=configfile)
    assert result.returncode == 1
    assert f"config error in {configfile}" in result.stderr
    assert CONFIG_CASES[change] in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "rules/common.smk" not in result.stderr
    assert snapshot(workdir / "results") == before
    assert not (workdir / "logs").exists()


def test_default_config_with_yaml_syntax_error_names_file_and_line(workdir):
    (workdir / "config").mkdir()
    (workdir / "config" / "config.yaml").write_text("datasets:\n  mine:\n    kind: npz\n    source: {path: x\n")
    before = snapshot(workdir / "results")
    result = snakemake(workdir)
    assert result.returncode == 1
    assert "config error: config/config.yaml:5:1: not valid YAML" in result.stderr, result.stderr
    assert snapshot(workdir / "results") == before


def test_configfile_with_yaml_syntax_error_names_file_and_line(workdir):
    configfile = workdir / "broken.yaml"
    configfile.write_text("datasets:\n  mine: {kind: npz\n  other: {kind: digits}\n")
    before = snapshot(workdir / "results")
    result = snakemake(workdir, configfile=configfile)
    assert result.returncode == 1
    assert f"Config file {configfile}:3:8: not valid YAML: expected ',' or '}}'" in result.stderr, result.stderr
    assert snapshot(workdir / "results") == before


def test_user_error_inside_a_job_fails_once(workdir):
    """Data the config cannot judge (a malformed file) fails in its job: once, no retries, one clear line."""
    write_npz(workdir / "mine.npz", x=np.zeros((30, 4, 4)), y=np.arange(30) % 3)
    configfile = workdir / "c.yaml"
    configfile.write_text(yaml.safe_dump(base_config(workdir)))
    result = snakemake(workdir, "mine", configfile=configfile)
    assert result.returncode != 0
    assert (result.stdout + result.stderr).count("Error in rule raw_data") == 1
    log = (workdir / "logs" / "mine" / "raw_data.log").read_text()
    assert "key 'x' must have 4 dimensions" in log and str(workdir / "mine.npz") in log
    assert (workdir / "results" / "mine" / "summary.json").read_text() == '{"earlier": true}\n'


def test_no_rule_retries_a_failed_job():
    """Retries belong to the Slurm profile (time limits, preemption), not to the rules. The one exception is a
    user's simulator (issue 18): `design.oracle.retries`, read by the simulation rule alone."""
    for smk in (ROOT / "rules").glob("*.smk"):
        for block in smk.read_text().split("\nrule ")[1:]:
            allowed = block.startswith("design_simulate:") and "retries: SIMULATION_RETRIES" in block
            assert allowed or "retries:" not in block, (smk, block.split(":")[0])
    profile = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["retries"] >= 1 and profile["slurm-requeue"] is True
    assert "retries" not in yaml.safe_load((ROOT / "profiles" / "local" / "config.yaml").read_text())



def test_target_after_configfile_is_named(workdir):
    """`--configfile cfg.yaml TARGET` reads TARGET as a second config file; say so, and how to write it."""
    configfile = workdir / "c.yaml"
    configfile.write_text(yaml.safe_dump(base_config(workdir)))
    before = snapshot(workdir / "results")
    for target, problem in (("results/mine/metrics.json", "does not exist"),  # not there yet
                            ("results/mine/summary.json", "is not a .yaml or .yml file")):  # an earlier result
        command = [*SNAKEMAKE, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir), "--cores", "1",
                   "--configfile", str(configfile), target]
        result = subprocess.run(command, capture_output=True, text=True, env=snakemake_env(), timeout=300,
                                cwd=workdir)  # Snakemake reads config files from where it was started
        assert result.returncode == 1
        assert f"config file '{target}' {problem}: a target after --configfile is read as a config file; put " \
               "targets before --configfile (snakemake TARGET --configfile FILE) or use --configfile=FILE" \
               in result.stderr, result.stderr
        assert "FileNotFoundError" not in result.stderr
    assert snapshot(workdir / "results") == before
    assert not (workdir / "logs").exists()


# ------------------------------------------------------------------------- data the config cannot judge
def fetch_and_prepare(tmp_path: Path, block: dict) -> tuple[subprocess.CompletedProcess, dict]:
    """Run fetch, then (if it passed) prepare, over an earlier prepared result; return the last result and the
    earlier result's snapshot."""
    manifest = tmp_path / "raw" / "manifest.json"
    out = tmp_path / "data"
    before = earlier_result(out, "prepared.npz")
    result = run_cli("fetch", "--settings", settings(block, "raw_data"), "--out", str(manifest))
    if result.returncode == 0:
        result = run_cli("prepare", "--settings", settings(block, "prepare"), "--manifest", str(manifest),
                         "--out", str(out / "prepared.npz"))
    return result, before


def test_classification_with_a_single_class(tmp_path):
    data = write_npz(tmp_path / "one.npz", x=np.zeros((20, 1, 4, 4)), y=np.full(20, 3))
    result, before = fetch_and_prepare(tmp_path, {"kind": "npz", "source": {"path": str(data)}})
    message = last_line(result)
    assert result.returncode == 2 and str(data) in message, result.stderr
    assert "a single class ('3', all 20 samples): a classifier needs at least two classes" in message
    assert snapshot(tmp_path / "data") == before


def test_classification_labels_that_skip_ids_become_named_classes(tmp_path):
    """Labels {3, 7}: two classes named "3" and "7" (README, "Your own data"), not 8 classes with 6 empty."""
    labels = np.array([3, 7] * 10)
    data = write_npz(tmp_path / "two.npz", x=np.random.default_rng(0).random((20, 1, 4, 4)), y=labels)
    result, _ = fetch_and_prepare(tmp_path, {"kind": "npz", "source": {"path": str(data)}})
    assert result.returncode == 0, result.stderr
    prepared = PreparedData.load(tmp_path / "data" / "prepared.npz")
    assert prepared.class_names == ("3", "7") and prepared.out_dim == 2
    assert prepared.y.tolist() == (labels == 7).astype(int).tolist()
    assert prepared.provenance["labels"] == [3, 7]


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_too_few_samples_for_the_split(tmp_path, task):
    data = write_npz(tmp_path / "five.npz", x=np.zeros((5, 1, 4, 4)), y=np.array([0, 1, 0, 1, 0]))
    result, before = fetch_and_prepare(tmp_path, {"kind": "npz", "source": {"path": str(data), "task": task}})
    message = last_line(result)
    assert result.returncode == 2 and str(data) in message, result.stderr
    assert "5 samples are too few for the split" in message and "test 1" in message
    assert "each part needs at least 2 samples" in message and "the data needs at least 8 samples" in message
    assert snapshot(tmp_path / "data") == before


STRIDE_STEPS = {  # step -> (dataset block, the config key its error names)
    "search": ({"search": {"input_stride": [64, 64]}}, "datasets.toy.search.input_stride"),
    "train": ({"train": {"genotype": "DARTS_V2", "input_stride": [9, 1]}}, "datasets.toy.train.input_stride"),
    "baseline": ({"baselines": {"tiny_resnet": {"input_stride": [1, 64]}}},
                 "datasets.toy.baselines.tiny_resnet.input_stride"),
}


@pytest.mark.parametrize("step", sorted(STRIDE_STEPS))
def test_input_stride_larger_than_the_prepared_images(tmp_path, step):
    """The config check judges the user's file (here 64x64 images); the step checks its prepared data again (8x8:
    the file was replaced, or the step is run by hand)."""
    data = tiny_prepared(tmp_path / "prepared.npz")
    block, key = STRIDE_STEPS[step]
    user_file = write_npz(tmp_path / "x.npz", x=np.zeros((12, 1, 64, 64)), y=np.arange(12) % 2)
    before = earlier_result(tmp_path / "out")
    result = run_step(step, tmp_path, data, {"kind": "npz", "source": {"path": str(user_file)}, **block})
    message = last_line(result)
    assert result.returncode == 2 and f"config key '{key}'" in message, result.stderr
    assert "is larger than the 8x8 images" in message and str(data) in message
    assert snapshot(tmp_path / "out") == before
    assert not (tmp_path / "ckpt").exists()


# ------------------------------------------------------------ files from shared storage never run code
def test_cifar10_copy_that_is_not_the_published_one_is_refused(tmp_path):
    folder = write_fake_cifar10(tmp_path / "cifar", n_per_batch=4, n_test=4)
    out = tmp_path / "raw"
    before = earlier_result(out, "manifest.json")
    block = {"kind": "cifar10", "source": {"path": str(tmp_path / "cifar"), "download": False}}
    result = run_cli("fetch", "--settings", settings(block, "raw_data"), "--out", str(out / "manifest.json"))
    message = last_line(result)
    assert result.returncode == 2, result.stderr
    assert f"CIFAR-10 file {folder / 'data_batch_1'} does not match the published checksum: expected MD5 " \
           "c99cafc152244af753f735de768cd75f, found " in message
    assert "Python pickles, which can run code" in message and "datasets.toy.source.trust_unverified: true" in message
    assert snapshot(out) == before


@pytest.mark.parametrize("trusted", [False, True])
def test_planted_cifar10_batch_runs_no_code(tmp_path, trusted):
    """A batch whose pickle would run a command: refused by its checksum, and, with trust_unverified, by the
    restricted unpickler."""
    folder = write_fake_cifar10(tmp_path / "cifar", n_per_batch=4, n_test=4)
    marker = tmp_path / "code-ran"
    write_malicious(folder / "data_batch_3", marker, form="pickle")
    block = {"kind": "cifar10", "source": {"path": str(tmp_path / "cifar"), "download": False,
                                           "trust_unverified": trusted}}
    result, before = fetch_and_prepare(tmp_path, block)
    message = last_line(result)
    assert result.returncode == 2 and not marker.exists(), result.stderr
    if trusted:
        assert f"error in step 'prepare': CIFAR-10 file {folder / 'data_batch_3'} is unreadable: refused " \
               "posix.system" in message, message
    else:
        assert f"CIFAR-10 file {folder / 'data_batch_1'} does not match the published checksum" in message
        assert "(and 6 more file(s))" in message
    assert snapshot(tmp_path / "data") == before


def genotype_file(path: Path) -> str:
    path.write_text(json.dumps(GENOTYPES["DARTS_V2"].to_dict()))
    return str(path)


TINY_NET = {"epochs": 1, "batch_size": 4, "max_steps_per_epoch": 1}
TINY_CELL = {**TINY_NET, "C": 4, "layers": 3}
RANDOM_SEARCH = {"baselines": {"random_search": {"C": 4, "layers": 3, "batch_size": 4, "max_steps_per_epoch": 1,
                                                 "num_candidates": 1, "match_search_budget": False,
                                                 "candidate_epochs": 1}},
                 "train": {**TINY_CELL, "auxiliary": False}}
CHECKPOINTS = {  # case -> (step arguments, dataset block, planted checkpoint relative to --checkpoint-dir)
    "search": (["search"], {"search": TINY_CELL}, "ckpt.pt"),
    "train": (["train"], {"train": {**TINY_CELL, "genotype": "DARTS_V2", "auxiliary": False}}, "ckpt.pt"),
    "fixed_cell": (["baseline", "--method", "fixed_cell"], {"train": {**TINY_CELL, "auxiliary": False},
                   "baselines": {"fixed_cell": {"genotype": "DARTS_V2"}}}, "ckpt.pt"),
    "cnn baseline": (["baseline", "--method", "tiny_resnet"], {"baselines": {"tiny_resnet": TINY_NET}}, "ckpt.pt"),
    "random-search candidate": (["baseline", "--method", "random_search"],
                                RANDOM_SEARCH, "candidates/cand0.pt"),
    "random-search winner": (["baseline", "--method", "random_search"],
                             RANDOM_SEARCH, "final/ckpt.pt"),
    "selection": (["select"], {"selection": {"enabled": True, "epochs": 1, "max_steps_per_epoch": 1},
                               "train": {**TINY_CELL, "auxiliary": False}}, "seed1.pt"),
    "learning curve": (["learning-curves"], {"learning_curves": {"methods": ["tiny_resnet"], "sizes": ["all"],
                                                                 "seeds": [0]},
                                             "baselines": {"tiny_resnet": TINY_NET}}, "tiny_resnet/n8/seed0/ckpt.pt"),
}


def step_command(case: str, tmp_path: Path, data: Path) -> list[str]:
    args, block, _ = CHECKPOINTS[case]
    step = args[0]
    name = {"baseline": args[-1], "select": "select_cell", "learning-curves": "learning_curves"}.get(step, step)
    command = [*args, "--settings", settings({"kind": "digits", **block}, name), "--data", str(data),
               "--checkpoint-dir", str(tmp_path / "ckpt")]
    out = tmp_path / "out"
    if step == "select":
        genotypes = [genotype_file(tmp_path / f"g{seed}.json") for seed in (0, 1)]
        return command + ["--genotypes", *genotypes, "--seeds", "0", "1", "--out", str(out / "selected_genotype.json")]
    if step == "learning-curves":
        return command + ["--seeds", "0", "--out", str(out / "learning_curves.json")]
    return command + ["--out", str(out), "--seed", "0"]


@pytest.mark.parametrize("case", sorted(CHECKPOINTS))
def test_planted_checkpoint_runs_no_code(tmp_path, case):
    """A checkpoint planted in (shared) checkpoint space whose pickle would run a command: the safe loader refuses
    it before anything runs; it is kept aside for inspection with a warning naming it, and the step starts
    afresh (workflow_lib.engine.loop)."""
    data = tiny_prepared(tmp_path / "prepared.npz")
    marker = tmp_path / "code-ran"
    planted = tmp_path / "ckpt" / CHECKPOINTS[case][2]
    payload = write_malicious(planted, marker)
    other = earlier_result(tmp_path / "ckpt" / "other")  # a neighbour in the checkpoint space
    result = run_cli(*step_command(case, tmp_path, data))
    assert result.returncode == 0, result.stderr[-3000:]
    assert not marker.exists()
    aside = planted.with_name(planted.name + ".unusable")
    assert f"checkpoint {planted} is refused as unsafe: not a plain checkpoint" in result.stderr, result.stderr[-3000:]
    assert "GLOBAL posix.system" in result.stderr and f"moved it to {aside} and starting afresh" in result.stderr
    assert "will likely succeed" not in result.stderr  # torch's advice to load it unsafely is not passed on
    assert aside.read_bytes() == payload  # kept, unchanged, for whoever investigates
    assert snapshot(tmp_path / "ckpt" / "other") == other
    assert "resumed" not in result.stderr
