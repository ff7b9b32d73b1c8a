"""Bad input through the workflow's command line: one clear line naming what and where; nothing partial."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from workflow_lib.config import load_config
from workflow_lib.config.stage import stage_document
from workflow_lib.datasets.prepared import PreparedData


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workflow_lib", *args], capture_output=True, text=True, timeout=300)


def write_stage(path: Path, dataset_block: dict, stage: str, device: dict | None = None) -> Path:
    config = load_config({"datasets": {"toy": dataset_block}, "device": device or {}})
    path.write_text(json.dumps(stage_document(config, "toy", stage)))
    return path


def test_malformed_kirigami_file_names_file_line_and_column(tmp_path):
    bad = tmp_path / "15grid_shuffled.dat"
    good_row = " ".join(["1"] * 15 + ["0.2", "1.0", "5.0"])
    bad.write_text(good_row + "\n" + " ".join(["1"] * 14 + ["2", "0.2", "1.0", "5.0"]) + "\n")
    stage = write_stage(tmp_path / "data.json", {"kind": "kirigami", "source": {"type": "md", "path": str(bad)}}, "data")
    out = tmp_path / "raw" / "manifest.json"
    result = run_cli("fetch", "--stage", str(stage), "--out", str(out))
    assert result.returncode == 2
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("error in step 'fetch':") and f"{bad}:2" in message and "column 14" in message
    assert not out.exists()


def test_missing_gpu_is_a_clear_error_and_writes_nothing(tmp_path):
    data = PreparedData(x=np.zeros((6, 1, 8, 8), np.float32), y=np.arange(6) % 2, task="classification",
                        split=np.array([0, 1, 2, 0, 1, 2], np.int8), class_names=("a", "b"))
    data.save(tmp_path / "prepared.npz")
    stage = write_stage(tmp_path / "search.json", {"kind": "digits"}, "search", device={"type": "cuda"})
    out = tmp_path / "search"
    result = run_cli("search", "--stage", str(stage), "--data", str(tmp_path / "prepared.npz"), "--out", str(out),
                     "--checkpoint-dir", str(tmp_path / "ckpt"), "--seed", "0")
    assert result.returncode == 2
    assert "device.type is 'cuda' but no CUDA GPU is visible" in result.stderr
    assert "allow_cpu_fallback" in result.stderr
    assert not out.exists()


def test_missing_prepared_data_is_a_clear_error(tmp_path):
    stage = write_stage(tmp_path / "train.json", {"kind": "digits", "train": {"genotype": "DARTS_V2"}}, "train")
    result = run_cli("train", "--stage", str(stage), "--data", str(tmp_path / "absent.npz"), "--out",
                     str(tmp_path / "out"), "--checkpoint-dir", str(tmp_path / "ckpt"), "--seed", "0")
    assert result.returncode == 2
    assert "absent.npz" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "out").exists()
