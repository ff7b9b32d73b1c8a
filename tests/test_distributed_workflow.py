"""The workflow's final training with ``device.processes: 2`` (real Snakemake, CPU, gloo) lands within noise of
the 1-process run.

Digits, the DARTS_V2 cell (a named genotype: no search needed), 4 full epochs. The two runs share the data,
the seed, the global batch and the order of the rows; they differ in the summation order, in BatchNorm (on
the CPU each process normalises its 16 rows of a 32-row step) and in the drop-path masks (each process its
own stream). The noise is what another seed gives in one process: the 2-process run must be as close to the
1-process run as that.
"""

from __future__ import annotations

import json

from workflow_helpers import default_config, run_snakemake, write_config

TARGET = "results/digits/methods/darts/seed{seed}/metrics.json"


def digits_config(processes: int, seeds: list[int]) -> dict:
    config = default_config()
    digits = config["datasets"]["digits"]
    digits["methods"] = ["darts"]
    digits["train"] = {**digits["train"], "genotype": "DARTS_V2", "epochs": 4, "max_steps_per_epoch": None}
    config["datasets"] = {"digits": digits}
    config["seeds"] = seeds
    config["device"]["processes"] = processes
    return config


def trained(tmp_path, name: str, processes: int, seeds: list[int]) -> dict[int, dict]:
    workdir = tmp_path / name
    workdir.mkdir()
    configfile = write_config(tmp_path / f"{name}.yaml", digits_config(processes, seeds))
    targets = [TARGET.format(seed=seed) for seed in seeds]
    run_snakemake(workdir, "--cores", "2", *targets, configfile=configfile)
    return {seed: json.loads((workdir / TARGET.format(seed=seed)).read_text()) for seed in seeds}


def test_final_training_in_two_processes_lands_within_noise(tmp_path):
    one = trained(tmp_path, "one", 1, [0, 1])
    two = trained(tmp_path, "two", 2, [0])[0]
    assert two["run_info"]["world_size"] == 2 and two["run_info"]["backend"] == "gloo"
    assert one[0]["run_info"]["world_size"] == 1 and one[0]["run_info"]["backend"] == "none"
    assert two["budget"]["optimizer_steps"] == one[0]["budget"]["optimizer_steps"]  # the same global batches
    noise = abs(one[1]["test"]["accuracy"] - one[0]["test"]["accuracy"])
    gap = abs(two["test"]["accuracy"] - one[0]["test"]["accuracy"])
    print(f"test accuracy: 1 process {one[0]['test']['accuracy']:.4f} (seed 1: {one[1]['test']['accuracy']:.4f}), "
          f"2 processes {two['test']['accuracy']:.4f}")
    assert two["test"]["accuracy"] > 0.5  # it learned (10 classes: chance is 0.1)
    assert gap <= max(2 * noise, 0.03), (gap, noise)
