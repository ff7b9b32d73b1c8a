"""Checks of a schema-valid config that JSON Schema cannot express, run before any job starts.

- ``source.type: null`` becomes the dataset kind's default source (the first type its schema branch allows).
- ``train.genotype`` must name a published genotype (``workflow_lib.darts.genotypes.GENOTYPES``) or a
  readable genotype JSON file; an unknown name would otherwise fail only inside the training job.
- ``search.arch_warmup_epochs`` must leave an epoch that updates the architecture (else the cell is derived
  from the initial noise), and the ``darts_es`` stop rule needs the Hessian eigenvalue
  (``search.diagnostics.hessian_every`` >= 1).
- data files named in the config (``npz`` files, a local MD file) must exist, so a typo fails in seconds,
  not after the DAG has started deleting the previous run's outputs.
- every ``input_stride`` must fit the dataset's images (a stride larger than the image leaves a 1x1 input):
  here where the size follows from the config (``DatasetSpec.image_size``: digits 8x8, cifar10 32x32,
  kirigami (30 + 2 pad_rows)x80, npz from the header of the file's ``x``), and again in each step on the
  prepared data (``check_step_input_strides``, called by the command line), naming the same key.
- ``results_dir``, ``checkpoint_dir`` and ``log_dir`` must be folders (or not exist yet), not files.
- with ``device.processes`` P > 1 every batch size a multi-process step trains with is the global batch and
  must be divisible by P (each process takes batch_size / P rows of every step).
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


def check_input_stride(key: str, stride: list[int], size: tuple[int, int], what: str) -> None:
    """Refuse a stride larger than the images: ``subsample`` would silently leave one row or column."""
    height, width = size
    if stride[0] > height or stride[1] > width:
        rows, cols = -(-height // stride[0]), -(-width // stride[1])
        raise _error(f"config key '{key}': input_stride {list(stride)} is larger than the {height}x{width} images "
                     f"of {what} (the network would see {rows}x{cols}); each stride must be at most the image "
                     f"height and width ([rows <= {height}, columns <= {width}])")


def _strides_in(node: Any, path: str) -> list[tuple[str, list[int]]]:
    if not isinstance(node, dict):
        return []
    found = []
    for key, value in node.items():
        found += [(f"{path}.{key}", value)] if key == "input_stride" else _strides_in(value, f"{path}.{key}")
    return found


def _check_input_strides(name: str, block: dict[str, Any]) -> None:
    from workflow_lib.datasets.registry import get_dataset

    size = get_dataset(block["kind"]).image_size(block)
    if size is None:  # an unreadable npz: its fetch step names the problem; each step checks again
        return
    for key, stride in _strides_in(block, f"datasets.{name}"):
        check_input_stride(key, stride, size, f"dataset {name!r}")


def check_step_input_strides(stage: Any, data_path: str | Path) -> None:
    """A step's strides against its prepared data (``stage``: a StageConfig), before it loads anything else."""
    from workflow_lib.config.stage import input_strides
    from workflow_lib.io import npz_array_shape

    shape = npz_array_shape(data_path, "x")
    if shape is None or len(shape) != 4:  # missing or unreadable: the step's own loader says so
        return
    for key, stride in input_strides(stage.stage, stage.settings):
        check_input_stride(f"datasets.{stage.dataset}.{key}", stride, (shape[2], shape[3]),
                           f"dataset {stage.dataset!r} ({data_path})")


def global_batches(name: str, block: dict[str, Any]) -> list[tuple[str, int]]:
    """(key, batch size) of every batch the dataset's multi-process steps train with (cli.DISTRIBUTED_STEPS)."""
    methods = set(block["methods"])
    searches = "darts" in methods and not block["train"]["genotype"]
    found: list[tuple[str, int]] = []
    if searches:
        found.append(("search.batch_size", block["search"]["batch_size"]))
    if methods & {"darts", "fixed_cell", "random_search"}:  # the final training of a cell
        found.append(("train.batch_size", block["train"]["batch_size"]))
    for method in sorted(methods & {"resnet18", "tiny_resnet", "random_search"}):
        found.append((f"baselines.{method}.batch_size", block["baselines"][method]["batch_size"]))
    return [(f"datasets.{name}.{key}", size) for key, size in found]


def _check_processes(config: dict[str, Any]) -> None:
    processes = config["device"]["processes"]
    if processes == 1:
        return
    for name, block in config["datasets"].items():
        for key, size in global_batches(name, block):
            if size % processes:
                raise _error(f"config key '{key}': batch_size {size} is the global batch of the device.processes "
                             f"= {processes} processes and must be divisible by it (each process takes batch_size "
                             f"/ processes rows of every step); use a multiple of {processes}")


FOLDER_KEYS = ("results_dir", "checkpoint_dir", "log_dir")


def _check_folders(config: dict[str, Any]) -> None:
    """Each output folder must be a folder or not exist yet; a file at (or above) it would fail every job."""
    for key in FOLDER_KEYS:
        path = Path(config[key])
        for part in (path, *path.parents):
            if part.exists() and not part.is_dir():
                where = "is a file" if part == path else f"lies under {part}, which is a file"
                raise _error(f"config key '{key}': {config[key]} {where}, not a folder; "
                             "set another path or move the file")


def check_config(config: dict[str, Any]) -> dict[str, Any]:
    """Apply the checks above to a schema-valid config (in place) and return it."""
    _check_folders(config)
    _check_processes(config)
    for name, block in config["datasets"].items():
        _check_source(name, block)
        _check_split(name, block)
        _check_search(name, block)
        _check_selection(name, block)
        _check_genotype(f"datasets.{name}.train.genotype", block["train"]["genotype"])
        _check_fixed_cell(name, block)
        _check_design(name, block)
        _check_input_strides(name, block)
    return config
