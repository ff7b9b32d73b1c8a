"""Step configs: the slice of the validated config that one workflow step reads, and nothing else.

Each rule passes its step's slice to the job as JSON in a ``params:`` entry, so Snakemake's own params
trigger reruns exactly the steps whose settings changed (changing ``train.epochs`` reruns the final
training, the random search, which trains its winner with those settings, and the search advantage, whose
cells train with them; never the data or the search).
The ``device`` block belongs to the steps that train networks only (``workflow_lib.methods.NEURAL_STEPS``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

from workflow_lib.config.types import AugmentConfig, DeviceConfig
from workflow_lib.methods import BASELINES, FIXED_CELL, NEURAL_STEPS, RANDOM_SEARCH, SEARCH_ADVANTAGE, STEPS

SOURCE_KEYS = ("kind", "source")
# read by the search alone: its diagnostics and stop rule, and settings that change how fast a search
# step runs (not what a matched random search shares)
SEARCH_ONLY_KEYS = ("diagnostics", "stop", "kernel", "recompute")
DATA_KEYS = ("kind", "source", "target", "pad_rows", "split")


def stage_settings(config: dict, dataset: str, stage: str) -> dict[str, Any]:
    """The settings one step of one dataset reads (config already validated)."""
    block = config["datasets"][dataset]
    if stage == "raw_data":
        return {key: block[key] for key in SOURCE_KEYS}
    if stage == "prepare":
        return {key: block[key] for key in DATA_KEYS}
    if stage in ("search", "train"):
        return block[stage]
    if stage == "select_cell":
        return {"selection": block["selection"], "train": block["train"]}
    if stage == SEARCH_ADVANTAGE:  # every cell trains with the train settings, shortened by the block
        return {"search_advantage": block["search_advantage"], "train": block["train"]}
    if stage == FIXED_CELL:
        return {"fixed_cell": block["baselines"][FIXED_CELL], "train": block["train"]}
    if stage == RANDOM_SEARCH:
        return {
            "random_search": block["baselines"][RANDOM_SEARCH],
            "train": block["train"],
            # the DARTS budget and proxy a matched random search shares (not the search's diagnostics or stop)
            "search": {key: value for key, value in block["search"].items() if key not in SEARCH_ONLY_KEYS},
        }
    if stage in BASELINES:
        return block["baselines"][stage]
    if stage == "design_table":
        return {"target": block["target"]}  # the table holds every candidate's true target
    if stage == "design":
        return design_settings(block)
    if stage == "design_pick":  # what the picks depend on (not the simulation jobs' resources or retries)
        design = design_settings(block)
        return {**design, "oracle": {k: v for k, v in design["oracle"].items() if k not in ("resources", "retries")}}
    if stage == "design_simulate":
        return {"oracle": {k: block["design"]["oracle"][k] for k in ("command", "retries")}}
    if stage == "learning_curves":  # each curve's method trains with its own step's settings
        curves = block["learning_curves"]
        own = {"darts": block["train"], **block["baselines"]}
        return {"learning_curves": curves, **{method: own[method] for method in curves["methods"]}}
    raise ValueError(f"unknown step {stage!r}; expected one of {STEPS}")


def design_settings(block: dict) -> dict[str, Any]:
    """The design block, its DARTS picker's genotype defaulting to train.genotype (a named cell)."""
    design = dict(block["design"])
    if design["darts"]["genotype"] is None and block["train"]["genotype"]:
        design["darts"] = {**design["darts"], "genotype": block["train"]["genotype"]}
    return design


COMPOSITE_STEPS = ("select_cell", FIXED_CELL, RANDOM_SEARCH, "learning_curves")  # settings: {block name: block}


def settings_key(stage: str, path: Sequence[str]) -> str:
    """The dataset-block key (e.g. ``baselines.resnet18.input_stride``) of the setting at ``path`` of a step's
    settings (``stage_settings``): the inverse of the slicing above, for naming config keys in errors."""
    if stage in COMPOSITE_STEPS:
        head = {"darts": "train"}.get(path[0], path[0])  # a learning curve's darts trains with train
        head = f"baselines.{head}" if head in BASELINES else head
        return ".".join([head, *path[1:]])
    head = f"baselines.{stage}" if stage in BASELINES else stage
    return ".".join([head, *path])


def input_strides(stage: str, settings: dict[str, Any]) -> list[tuple[str, list[int]]]:
    """Every ``input_stride`` in a step's settings, with its dataset-block key."""
    found: list[tuple[str, list[int]]] = []

    def walk(node: Any, path: list[str]) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "input_stride":
                    found.append((settings_key(stage, [*path, key]), list(value)))
                else:
                    walk(value, [*path, key])

    walk(settings, [])
    return found


def stage_document(config: dict, dataset: str, stage: str) -> dict[str, Any]:
    """The document a step receives: dataset, kind, step name, settings (and the device for neural steps)."""
    document = {
        "dataset": dataset,
        "kind": config["datasets"][dataset]["kind"],
        "stage": stage,
        "settings": stage_settings(config, dataset, stage),
    }
    if stage in NEURAL_STEPS:
        document["device"] = config["device"]
        document["augment"] = config["datasets"][dataset]["augment"]
    return document


def stage_json(config: dict, dataset: str, stage: str) -> str:
    """The step document as canonical JSON (sorted keys): equal settings always give the same text."""
    return json.dumps(stage_document(config, dataset, stage), sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class StageConfig:
    dataset: str
    kind: str
    stage: str
    device: DeviceConfig
    settings: dict[str, Any]
    augment: AugmentConfig

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> "StageConfig":
        return cls(
            dataset=document["dataset"],
            kind=document["kind"],
            stage=document["stage"],
            device=DeviceConfig.from_dict(document.get("device")),
            settings=document["settings"],
            augment=AugmentConfig.from_dict(document.get("augment")),
        )

    @classmethod
    def from_json(cls, text: str) -> "StageConfig":
        from workflow_lib.config.load import ConfigError

        try:
            document = json.loads(text)
        except ValueError as err:
            raise ConfigError(f"step settings are not valid JSON: {err}") from err
        if not isinstance(document, dict) or not {"dataset", "kind", "stage", "settings"} <= set(document):
            raise ConfigError("step settings must be a JSON object with dataset, kind, stage and settings")
        return cls.from_dict(document)

    def to_dict(self) -> dict[str, Any]:
        document = {"dataset": self.dataset, "kind": self.kind, "stage": self.stage, "settings": self.settings}
        if self.stage in NEURAL_STEPS:
            document["device"] = self.device.to_dict()
            document["augment"] = self.augment.to_dict()
        return document
