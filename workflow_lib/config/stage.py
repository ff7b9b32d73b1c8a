"""Stage configs: the slice of the validated config that one workflow step needs.

The Snakefile writes each slice to results/{dataset}/config/{stage}.json through a rule whose params
are the slice, so changing one dataset's block reruns only that dataset's affected stages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workflow_lib.config.types import DeviceConfig

STAGES = ("data", "search", "train", "random_forest", "resnet18", "tiny_resnet", "random_search")


def stage_settings(config: dict, dataset: str, stage: str) -> dict[str, Any]:
    """The settings slice of one stage of one dataset (config already validated)."""
    block = config["datasets"][dataset]
    if stage == "data":
        return {key: block[key] for key in ("kind", "source", "target", "pad_rows", "split")}
    if stage in ("search", "train"):
        return block[stage]
    if stage == "random_search":
        return {
            "random_search": block["baselines"]["random_search"],
            "train": block["train"],
            "search_epochs": block["search"]["epochs"],  # the DARTS budget a matched random search shares
        }
    if stage in ("random_forest", "resnet18", "tiny_resnet"):
        return block["baselines"][stage]
    raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")


def stage_document(config: dict, dataset: str, stage: str) -> dict[str, Any]:
    """The JSON document a stage config file holds."""
    return {
        "dataset": dataset,
        "kind": config["datasets"][dataset]["kind"],
        "stage": stage,
        "device": config["device"],
        "settings": stage_settings(config, dataset, stage),
    }


@dataclass(frozen=True)
class StageConfig:
    dataset: str
    kind: str
    stage: str
    device: DeviceConfig
    settings: dict[str, Any]

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> "StageConfig":
        return cls(
            dataset=document["dataset"],
            kind=document["kind"],
            stage=document["stage"],
            device=DeviceConfig.from_dict(document["device"]),
            settings=document["settings"],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "kind": self.kind,
            "stage": self.stage,
            "device": self.device.to_dict(),
            "settings": self.settings,
        }


def read_stage_config(path: str | Path) -> StageConfig:
    with open(path) as handle:
        return StageConfig.from_dict(json.load(handle))
