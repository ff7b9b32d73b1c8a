"""Validated, typed configuration: schema defaults, validation errors that name the key, dataclasses."""

from workflow_lib.config.load import ConfigError, load_config, load_config_file
from workflow_lib.config.stage import StageConfig, stage_document, stage_json, stage_settings
from workflow_lib.config.types import (
    CNNBaselineConfig,
    DataConfig,
    DeviceConfig,
    RandomForestConfig,
    RandomSearchConfig,
    ResourcesConfig,
    SearchConfig,
    SourceConfig,
    SplitConfig,
    TrainConfig,
)

__all__ = [
    "CNNBaselineConfig",
    "ConfigError",
    "DataConfig",
    "DeviceConfig",
    "RandomForestConfig",
    "RandomSearchConfig",
    "ResourcesConfig",
    "SearchConfig",
    "SourceConfig",
    "SplitConfig",
    "StageConfig",
    "TrainConfig",
    "load_config",
    "load_config_file",
    "stage_document",
    "stage_json",
    "stage_settings",
]
