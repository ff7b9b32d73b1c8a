"""Fill schema defaults and validate a configuration; errors name the key path and the problem."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "config" / "schema.yaml"


class ConfigError(ValueError):
    """A configuration that does not match config/schema.yaml."""


def load_schema(path: Path = SCHEMA_PATH) -> dict:
    with open(path) as handle:
        return yaml.safe_load(handle)


def _resolve(schema: dict, root: dict) -> dict:
    while "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        schema = root["$defs"][name]
    return schema


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


def _describe(error: jsonschema.ValidationError) -> str:
    path = ".".join(str(part) for part in error.absolute_path) or "<top level>"
    return f"config key '{path}': {error.message}"


def load_config(config: dict, schema: dict | None = None) -> dict:
    """Validate config against the schema and return it with defaults filled.

    Raises ConfigError listing every problem, each with the dotted key path.
    """
    schema = schema or load_schema()
    if not isinstance(config, dict):
        raise ConfigError(f"the configuration must be a mapping, got {type(config).__name__}")
    filled = fill_defaults(config, schema, schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(filled), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = "\n  ".join(_describe(error) for error in errors)
        raise ConfigError(f"invalid configuration ({len(errors)} problem(s)):\n  {lines}")
    return filled


def load_config_file(path: str | Path) -> dict:
    """Read a YAML config file and validate it; parse errors name the file."""
    path = Path(path)
    try:
        with open(path) as handle:
            raw = yaml.safe_load(handle)
    except FileNotFoundError as err:
        raise ConfigError(f"config file not found: {path}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from err
    try:
        return load_config(raw or {})
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err
