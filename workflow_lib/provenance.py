"""What every run writes beside its results: config, package versions, seed, hardware, git commit, and the
processes of the training (``world_size`` and the torch.distributed ``backend``: nccl, gloo, or none for one
process)."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "torch", "torchvision", "numpy", "scipy", "pandas", "scikit-learn",
    "snakemake", "jinja2", "matplotlib", "graphviz",
)


def package_versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def hardware(device: str | None = None) -> dict[str, Any]:
    info: dict[str, Any] = {
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "hostname": platform.node(),
        "device": device or "cpu",
    }
    if device and device.startswith("cuda"):
        import torch

        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def git_commit(root: Path | None = None) -> str:
    root = root or Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def processes() -> dict[str, Any]:
    """``world_size`` and ``backend`` of this process's training (engine.distributed)."""
    from workflow_lib.engine import distributed

    return distributed.current().describe()


def run_info(config: dict[str, Any], seed: int | None, device: str | None = None) -> dict[str, Any]:
    """The record written as run_info.json beside every run's results."""
    return {
        "config": config,
        "seed": seed,
        "versions": package_versions(),
        "hardware": hardware(device),
        **processes(),
        "git_commit": git_commit(),
        "finished_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
