"""Checks of a schema-valid config that JSON Schema cannot express, run before any job starts.

- ``source.type: null`` becomes the dataset kind's default source (the first type its schema branch allows).
- ``train.genotype`` must name a published genotype (``workflow_lib.darts.genotypes.GENOTYPES``) or a
  readable genotype JSON file; an unknown name would otherwise fail only inside the training job.
- ``search.arch_warmup_epochs`` must leave an epoch that updates the architecture (else the cell is derived
  from the initial noise), and the ``darts_es`` stop rule needs the Hessian eigenvalue
  (``search.diagnostics.hessian_every`` >= 1).
- data files named in the config (``npz`` files, a local MD file) must exist, so a typo fails in seconds,
  not after the DAG has started deleting the previous run's outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workflow_lib.errors import UserError


def _error(message: str) -> UserError:
    from workflow_lib.config.load import ConfigError

    return ConfigError(message)


def kind_source_types(kind: str) -> list[str]:
    """The source types a dataset kind allows, its default first (from the schema's per-kind branch)."""
    from workflow_lib.config.load import schema_node

    for branch in schema_node("#/$defs/dataset").get("allOf", []):
        if branch["if"]["properties"]["kind"]["const"] == kind:
            allowed = branch["then"]["properties"]["source"]["properties"]["type"]["enum"]
            return [t for t in allowed if t is not None]
    raise _error(f"dataset kind {kind!r} has no source branch in config/schema.yaml")


def _check_genotype(key: str, value: str | None) -> None:
    if value is None:
        return
    from workflow_lib.darts.genotypes import GENOTYPES, Genotype, GenotypeError

    if value in GENOTYPES:
        return
    path = Path(value)
    if not path.is_file():
        raise _error(f"config key '{key}': unknown genotype {value!r}: not one of {sorted(GENOTYPES)} "
                     "and not an existing genotype JSON file")
    try:
        Genotype.load(path)
    except GenotypeError as err:
        raise _error(f"config key '{key}': {err}") from err


def _check_source(name: str, block: dict[str, Any]) -> None:
    source = block["source"]
    if source["type"] is None:
        source["type"] = kind_source_types(block["kind"])[0]
    key = f"datasets.{name}.source.path"
    needs_file = block["kind"] == "npz" or (block["kind"] == "kirigami" and source["type"] == "md")
    if block["kind"] == "npz" and not source["path"]:
        raise _error(f"config key '{key}': an npz dataset needs the path of its .npz file")
    if needs_file and source["path"] and not Path(source["path"]).is_file():
        raise _error(f"config key '{key}': data file {source['path']} does not exist")


def _check_design(name: str, block: dict[str, Any]) -> None:
    """The design loop needs the complete kirigami candidate table; a DARTS picker or curve needs a cell."""
    design, curves = block["design"], block["learning_curves"]
    if design["enabled"] and block["kind"] != "kirigami":
        raise _error(f"config key 'datasets.{name}.design.enabled': the design loop searches kirigami cut "
                     f"patterns; dataset {name!r} is {block['kind']!r}")
    _check_genotype(f"datasets.{name}.design.darts.genotype", design["darts"]["genotype"])
    searched = "darts" in block["methods"]
    named = block["train"]["genotype"]
    if design["enabled"] and "darts" in design["models"] and not (design["darts"]["genotype"] or named or searched):
        raise _error(f"config key 'datasets.{name}.design.models': darts needs a cell: set design.darts.genotype "
                     "or train.genotype, or add darts to methods (the search's cell)")
    if curves["enabled"] and "darts" in curves["methods"] and not (named or searched):
        raise _error(f"config key 'datasets.{name}.learning_curves.methods': darts needs a cell: set "
                     "train.genotype or add darts to methods (the search's cell)")


def _check_fixed_cell(name: str, block: dict[str, Any]) -> None:
    genotype = block["baselines"]["fixed_cell"]["genotype"]
    _check_genotype(f"datasets.{name}.baselines.fixed_cell.genotype", genotype)
    if "fixed_cell" in block["methods"] and not genotype:
        raise _error(f"config key 'datasets.{name}.baselines.fixed_cell.genotype': methods lists fixed_cell, so "
                     "name the published cell to train (e.g. KIRIGAMI_2019 or DARTS_V2)")


def _check_selection(name: str, block: dict[str, Any]) -> None:
    if block["selection"]["enabled"] and (block["train"]["genotype"] or "darts" not in block["methods"]):
        raise _error(f"config key 'datasets.{name}.selection.enabled': selection chooses among searched cells; "
                     "it needs darts in methods and train.genotype null")


def _check_search(name: str, block: dict[str, Any]) -> None:
    search = block["search"]
    if search["arch_warmup_epochs"] >= search["epochs"]:
        raise _error(f"config key 'datasets.{name}.search.arch_warmup_epochs': {search['arch_warmup_epochs']} "
                     f"warm-up epochs of {search['epochs']} leave no epoch that updates the architecture, so the "
                     "cell would be derived from the initial noise; use fewer than search.epochs")
    if search["stop"]["rule"] == "darts_es" and search["diagnostics"]["hessian_every"] < 1:
        raise _error(f"config key 'datasets.{name}.search.stop.rule': darts_es stops on the Hessian eigenvalue; "
                     "set search.diagnostics.hessian_every to 1 or more")


def _check_split(name: str, block: dict[str, Any]) -> None:
    if block["split"]["method"] == "official" and block["kind"] != "cifar10":
        raise _error(f"config key 'datasets.{name}.split.method': 'official' needs a dataset with its own test "
                     f"set (cifar10); dataset {name!r} is {block['kind']!r}")


def check_config(config: dict[str, Any]) -> dict[str, Any]:
    """Apply the checks above to a schema-valid config (in place) and return it."""
    for name, block in config["datasets"].items():
        _check_source(name, block)
        _check_split(name, block)
        _check_search(name, block)
        _check_selection(name, block)
        _check_genotype(f"datasets.{name}.train.genotype", block["train"]["genotype"])
        _check_fixed_cell(name, block)
        _check_design(name, block)
    return config
