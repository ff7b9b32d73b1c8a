"""Fill schema defaults and validate a configuration; errors name the file, the key path and the problem.

``config/schema.yaml`` is the one source of defaults; ``load_config`` fills them, validates, then runs the
checks a schema cannot express (``workflow_lib.config.checks``: genotype names, data files, per-kind
defaults). The list of methods comes from ``workflow_lib.methods`` and is injected into the schema here.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from workflow_lib.errors import UserError
from workflow_lib.methods import DEFAULT_METHODS, METHODS

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "config" / "schema.yaml"


class ConfigError(UserError, ValueError):
    """A configuration that does not match config/schema.yaml (or names something that does not exist)."""


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; a syntax error names the file, line and column."""
    path = Path(path)
    try:
        with open(path) as handle:
            return yaml.safe_load(handle)
    except FileNotFoundError as err:
        raise ConfigError(f"config file not found: {path}") from err
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"{where}: not valid YAML: {problem}") from err


@functools.lru_cache(maxsize=4)
def _schema_at(path: str) -> dict:
    schema = read_yaml(path)
    methods = schema["$defs"]["dataset"]["properties"]["methods"]
    methods["items"]["enum"] = list(METHODS)
    methods["default"] = list(DEFAULT_METHODS)
    return schema


def load_schema(path: Path = SCHEMA_PATH) -> dict:
    """The schema with the registered methods filled in (a copy: callers may modify it)."""
    return copy.deepcopy(_schema_at(str(path)))


def _resolve(schema: dict, root: dict) -> dict:
    while "$ref" in schema:
        node = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def schema_node(pointer: str, root: dict | None = None) -> dict:
    """The (resolved) sub-schema at a JSON pointer such as ``#/$defs/search``."""
    root = root if root is not None else _schema_at(str(SCHEMA_PATH))
    return _resolve({"$ref": pointer}, root)


def fill_defaults(value: Any, schema: dict, root: dict) -> Any:
    """Return a copy of value with every missing key that has a schema default filled in, recursively."""
    schema = _resolve(schema, root)
    if not isinstance(value, dict) or schema.get("type", "object") != "object":
        return value
    filled = dict(value)
    properties = schema.get("properties", {})
    for key, sub in properties.items():
        sub_resolved = _resolve(sub, root)
        if key not in filled and "default" in sub_resolved:
            filled[key] = copy.deepcopy(sub_resolved["default"])
        if key in filled:
            filled[key] = fill_defaults(filled[key], sub_resolved, root)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key in filled:
            if key not in properties:
                filled[key] = fill_defaults(filled[key], extra, root)
    return filled


def _describe(error: jsonschema.ValidationError, prefix: str = "") -> str:
    parts = [prefix] if prefix else []
    parts += [str(part) for part in error.absolute_path]
    path = ".".join(parts) or "<top level>"
    return f"config key '{path}': {error.message}"


def validate(value: Any, schema: dict, root: dict, prefix: str = "") -> None:
    """Raise ConfigError listing every problem of value against schema, each with its dotted key."""
    validator = jsonschema.Draft202012Validator(dict(schema, **{"$defs": root.get("$defs", {})}))
    errors = sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = "\n  ".join(_describe(error, prefix) for error in errors)
        raise ConfigError(f"invalid configuration ({len(errors)} problem(s)):\n  {lines}")


def load_config(config: dict, schema: dict | None = None) -> dict:
    """Validate config against the schema and return it with defaults filled.

    Raises ConfigError listing every problem, each with the dotted key path.
    """
    from workflow_lib.config.checks import check_config

    schema = schema or load_schema()
    if not isinstance(config, dict):
        raise ConfigError(f"the configuration must be a mapping, got {type(config).__name__}")
    filled = fill_defaults(config, schema, schema)
    validate(filled, schema, schema)
    return check_config(filled)


def load_config_file(path: str | Path) -> dict:
    """Read a YAML config file and validate it; every error names the file."""
    raw = read_yaml(path)
    try:
        return load_config(raw or {})
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err
