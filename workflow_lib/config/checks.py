"""Checks of a schema-valid config that JSON Schema cannot express, run before any job starts.

- ``source.type: null`` becomes the dataset kind's default source (the first type its schema branch allows).
- ``train.genotype`` must name a published genotype (``workflow_lib.darts.genotypes.GENOTYPES``) or a
  readable genotype JSON file; an unknown name would otherwise fail only inside the training job.
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
    """The design loop needs a design space (kirigami or an npz file's rows), an oracle, sound pickers and, for
    a DARTS picker, a named cell; a DARTS learning curve needs a cell."""
    design, curves = block["design"], block["learning_curves"]
    key = f"datasets.{name}.design"
    _check_genotype(f"{key}.darts.genotype", design["darts"]["genotype"])
    _check_unlabelled(name, block)
    if design["enabled"]:
        _check_design_loop(name, block)
    named = block["train"]["genotype"]
    if curves["enabled"] and "darts" in curves["methods"] and not (named or "darts" in block["methods"]):
        raise _error(f"config key 'datasets.{name}.learning_curves.methods': darts needs a cell: set "
                     "train.genotype or add darts to methods (the search's cell)")


def _check_unlabelled(name: str, block: dict[str, Any]) -> None:
    source = block["source"]
    if source["unlabelled"] != "error" and (block["kind"] != "npz" or source["task"] != "regression"):
        raise _error(f"config key 'datasets.{name}.source.unlabelled': rows without a label exist only in npz "
                     "regression data (NaN y)")


def _check_design_loop(name: str, block: dict[str, Any]) -> None:
    from workflow_lib.design.config import picker_problems

    design, key = block["design"], f"datasets.{name}.design"
    if block["kind"] not in ("kirigami", "npz"):
        raise _error(f"config key '{key}.enabled': the design loop searches a design space: kirigami's cut "
                     f"patterns or the rows of an npz file; dataset {name!r} is {block['kind']!r}")
    if block["kind"] == "npz" and block["source"]["task"] != "regression":
        raise _error(f"config key 'datasets.{name}.source.task': the design loop maximises a regression target")
    if block["kind"] == "npz" and block["source"]["subset"] is not None:
        raise _error(f"config key 'datasets.{name}.source.subset': the design loop's candidates are every row "
                     "of the file (ids are row indices); set subset to null")
    oracle = design["oracle"]
    if oracle["type"] == "command":
        command = oracle["command"] or ""
        if "{designs}" not in command or "{out}" not in command:
            raise _error(f"config key '{key}.oracle.command': the command oracle needs a command with "
                         f"{{designs}} and {{out}}, got {oracle['command']!r}")
    genotype = design["darts"]["genotype"] or block["train"]["genotype"]
    for picker_name, picker in design["pickers"].items():
        if picker["model"] == "darts" and not genotype:
            raise _error(f"config key '{key}.pickers.{picker_name}.model': a darts picker needs a named cell "
                         "(design.darts.genotype or train.genotype, e.g. KIRIGAMI_2019): the cell this "
                         "dataset's search found was trained on labels the design loop treats as unsimulated")
        problems = picker_problems(picker, design["random_forest"]["n_estimators"])
        if problems:
            raise _error(f"config key '{key}.pickers.{picker_name}': {problems[0]}")


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


def _check_split(name: str, block: dict[str, Any]) -> None:
    if block["split"]["method"] == "official" and block["kind"] != "cifar10":
        raise _error(f"config key 'datasets.{name}.split.method': 'official' needs a dataset with its own test "
                     f"set (cifar10); dataset {name!r} is {block['kind']!r}")


def check_config(config: dict[str, Any]) -> dict[str, Any]:
    """Apply the checks above to a schema-valid config (in place) and return it."""
    for name, block in config["datasets"].items():
        _check_source(name, block)
        _check_split(name, block)
        _check_selection(name, block)
        _check_genotype(f"datasets.{name}.train.genotype", block["train"]["genotype"])
        _check_fixed_cell(name, block)
        _check_design(name, block)
    return config
