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

from workflow_helpers import ROOT, SNAKEMAKE, snakemake_env
from workflow_lib.config import load_config, stage_json
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
    """Retries belong to the Slurm profile (time limits, preemption), not to the rules."""
    for smk in (ROOT / "rules").glob("*.smk"):
        assert "retries" not in smk.read_text(), smk
    profile = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["retries"] >= 1 and profile["slurm-requeue"] is True
    assert "retries" not in yaml.safe_load((ROOT / "profiles" / "local" / "config.yaml").read_text())

