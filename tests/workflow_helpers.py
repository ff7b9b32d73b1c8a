"""Run the real Snakemake workflow of this repository in a temporary working directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TINY_CONFIG = ROOT / "tests" / "config" / "tiny.yaml"  # the suite's own tiny config (config/config.yaml shows results)
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake_env() -> dict[str, str]:
    env = dict(os.environ)
    # the jobs call `python -m workflow_lib`: the venv's python must come first on PATH
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def run_snakemake(workdir: Path, *args: str, configfile: Path | None = None, check: bool = True,
                  timeout: int = 1500) -> subprocess.CompletedProcess:
    command = [*SNAKEMAKE, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
               "--configfile", str(configfile or TINY_CONFIG), *args]
    result = subprocess.run(command, capture_output=True, text=True, env=snakemake_env(), timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed ({result.returncode}):\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}")
    return result


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def default_config() -> dict:
    """The tiny test config as plain data (a JSON round trip undoes YAML anchors, so blocks edit separately)."""
    return json.loads(json.dumps(yaml.safe_load(TINY_CONFIG.read_text())))


def planned_jobs(dry_run_output: str) -> dict[str, int]:
    """Job counts per rule from the 'Job stats' table of a dry run."""
    counts: dict[str, int] = {}
    lines = dry_run_output.splitlines()
    if "Job stats:" not in lines:
        return counts
    for line in lines[lines.index("Job stats:") + 3:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit() or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts
