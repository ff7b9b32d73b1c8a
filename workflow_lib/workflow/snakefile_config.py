"""The Snakefile's config gate: validate before any job runs, or stop with one message naming the file.

A bad config never reaches a job: the message names the user's config file(s) and the dotted key, and
Snakemake stops before touching any output (``sys.exit`` from the Snakefile prints only our message, not a
traceback into rules/). What the machine can tell at parse time is checked too: ``device.type: cuda``
without a visible GPU on a local run, or without a GPU request on a cluster run.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn, Sequence

from workflow_lib.config import ConfigError, load_config
from workflow_lib.config.load import read_yaml
from workflow_lib.errors import UserError
from workflow_lib.methods import NEURAL_STEPS, step_of_method
from workflow_lib.workflow.targets import RESERVED_NAMES, runs_search

DEFAULT_CONFIG = "config/config.yaml"


def stop(message: str) -> NoReturn:
    print(message, file=sys.stderr)
    sys.exit(1)


def check_yaml(path: str | Path) -> None:
    """Parse a config file ourselves first: Snakemake's own message names neither file nor line."""
    try:
        read_yaml(path)
    except UserError as err:
        stop(f"config error: {err}")


def _neural(block: dict[str, Any], config: dict[str, Any], name: str) -> bool:
    steps = {step_of_method(method) for method in block["methods"]}
    if runs_search(config, name):
        steps.add("search")
    return bool(steps & set(NEURAL_STEPS))


def check_device(config: dict[str, Any], local_exec: bool, dryrun: bool) -> None:
    device = config["device"]
    if device["type"] != "cuda" or device["allow_cpu_fallback"]:
        return
    if not local_exec:  # cluster: every dataset that trains networks must ask for a GPU
        for name, block in config["datasets"].items():
            if _neural(block, config, name) and block["resources"]["gpu"] < 1:
                raise ConfigError(f"config key 'datasets.{name}.resources.gpu': device.type is 'cuda' but this "
                                  "dataset's jobs request no GPU; set gpu: 1 (or device.type: cpu)")
        return
    if dryrun:
        return
    import torch

    if not torch.cuda.is_available():
        raise ConfigError("config key 'device.type': 'cuda' but no CUDA GPU is visible on this machine; run on a "
                          "GPU node (e.g. --profile profiles/slurm), set device.type: cpu, or set "
                          "device.allow_cpu_fallback: true")


def validated_config(config: dict[str, Any], configfiles: Sequence[str | Path], *, main_process: bool,
                     local_exec: bool, dryrun: bool) -> dict[str, Any]:
    """The validated config (defaults filled), or stop naming the config file(s) and the problem."""
    files = ", ".join(str(path) for path in configfiles) or DEFAULT_CONFIG
    try:
        validated = load_config(config)
        clashes = sorted(set(validated["datasets"]) & RESERVED_NAMES)
        if clashes:
            raise ConfigError(f"dataset name(s) {clashes} clash with rule or method names; rename them")
        if main_process:
            check_device(validated, local_exec, dryrun)
    except UserError as err:
        stop(f"config error in {files}: {err}")
    return validated
