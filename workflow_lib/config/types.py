"""Typed views of the validated configuration: one frozen dataclass per block of config/schema.yaml.

The schema is the one source of defaults: the dataclasses declare no defaults, and ``from_dict`` fills the
keys a caller leaves out from the block's schema (``SCHEMA``, a JSON pointer) and validates the result, so a
typed config is always complete and valid.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

T = TypeVar("T", bound="ConfigBlock")


class ConfigBlock:
    """Mixin: build a dataclass from a (partial) dict; missing keys take the schema's defaults."""

    SCHEMA: ClassVar[str]

    @classmethod
    def from_dict(cls: type[T], values: dict[str, Any] | None) -> T:
        from workflow_lib.config.load import ConfigError, _schema_at, SCHEMA_PATH, fill_defaults, schema_node, validate

        root = _schema_at(str(SCHEMA_PATH))
        node = schema_node(cls.SCHEMA, root)
        filled = fill_defaults(dict(values or {}), node, root)
        validate(filled, node, root, prefix=cls.SCHEMA.rsplit("/", 1)[-1])
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        if set(filled) != names:
            raise ConfigError(f"{cls.__name__}: schema keys {sorted(filled)} differ from fields {sorted(names)}")
        return cls(**filled)

    @classmethod
    def defaults(cls: type[T]) -> T:
        return cls.from_dict({})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


@dataclass(frozen=True)
class DeviceConfig(ConfigBlock):
    SCHEMA: ClassVar[str] = "#/$defs/device"
    type: str
    allow_cpu_fallback: bool
    bf16: bool | str  # "auto", True or False
    channels_last: bool | str  # "auto", True or False
    threads: int
    processes: int


@dataclass(frozen=True)
class AugmentConfig(ConfigBlock):
    SCHEMA: ClassVar[str] = "#/$defs/augment"
    crop_padding: int
    horizontal_flip: bool
    normalize: bool


@dataclass(frozen=True)
class ResourcesConfig(ConfigBlock):
    SCHEMA: ClassVar[str] = "#/$defs/resources"
    gpu: int
    threads: int
    mem_mb: int
    runtime: int


@dataclass(frozen=True)
class SplitConfig(ConfigBlock):
    SCHEMA: ClassVar[str] = "#/$defs/split"
    test_fraction: float
    search_val_fraction: float
    seed: int
    method: str


@dataclass(frozen=True)
class SourceConfig(ConfigBlock):
    SCHEMA: ClassVar[str] = "#/$defs/source"
    type: str | None
    url: str
    path: str | None
    n_patterns: int | None
    subset: int | None
    seed: int
    task: str
    unlabelled: str  # npz regression: "error" or "drop" rows whose y is NaN
    download: bool
    trust_unverified: bool


@dataclass(frozen=True)
class SearchConfig(ConfigBlock):
    SCHEMA: ClassVar[str] = "#/$defs/search"
    method: str
    pc_k: int
    arch_warmup_epochs: int
    stem_stride: int
    epochs: int
    batch_size: int
    C: int
    layers: int
    order: str
    w_lr: float
    w_lr_min: float
    w_momentum: float
    w_weight_decay: float
    w_grad_clip: float
    alpha_lr: float
    alpha_beta1: float
    alpha_beta2: float
    alpha_weight_decay: float
    l1_alpha: float
    entropy_alpha: float
    max_steps_per_epoch: int | None
    cutout_length: int
    input_stride: list[int]
    max_samples: int | None
    eval_samples: int | None
    diagnostics: dict[str, Any]  # SearchDiagnosticsConfig
    stop: dict[str, Any]  # SearchStopConfig
    kernel: str
    recompute: bool


@dataclass(frozen=True)
class SearchDiagnosticsConfig(ConfigBlock):
    SCHEMA: ClassVar[str] = "#/$defs/search/properties/diagnostics"
    hessian_every: int
    hessian_samples: int
    hessian_max_iterations: int
    hessian_tol: float
    hessian_keep_graph: bool


@dataclass(frozen=True)
class SearchStopConfig(ConfigBlock):
    SCHEMA: ClassVar[str] = "#/$defs/search/properties/stop"
    rule: str
    darts_es: dict[str, Any]  # window, delta, factor, start_epoch
    stable_genotype: dict[str, Any]  # stable_epochs, start_epoch


@dataclass(frozen=True)
class TrainConfig(ConfigBlock):
    SCHEMA: ClassVar[str] = "#/$defs/train"
    genotype: str | None
    epochs: int
    batch_size: int
    C: int
    layers: int
    lr: float
    lr_min: float
    momentum: float
    weight_decay: float
    grad_clip: float
    auxiliary: bool
    auxiliary_weight: float
    drop_path_prob: float
    cutout_length: int
    max_steps_per_epoch: int | None
    input_stride: list[int]
    eval_samples: int | None


@dataclass(frozen=True)
class CNNBaselineConfig(ConfigBlock):
    SCHEMA: ClassVar[str] = "#/$defs/cnn_baseline"
    epochs: int
    batch_size: int
    optimizer: str
    lr: float
    lr_schedule: str
    momentum: float
    adam_beta1: float
    adam_beta2: float
    weight_decay: float
    grad_clip: float
    cutout_length: int
    max_steps_per_epoch: int | None
    input_stride: list[int]
    eval_samples: int | None


@dataclass(frozen=True)
class RandomForestConfig(ConfigBlock):
    SCHEMA: ClassVar[str] = "#/$defs/baselines/properties/random_forest"
    n_estimators: int
    max_depth: int | None
    min_samples_leaf: int
    max_features: float | str | None
    n_jobs: int


@dataclass(frozen=True)
class RandomSearchConfig(ConfigBlock):
    SCHEMA: ClassVar[str] = "#/$defs/baselines/properties/random_search"
    num_candidates: int
    candidate_epochs: int
    match_search_budget: bool
    C: int
    layers: int
    batch_size: int
    max_steps_per_epoch: int | None


@dataclass(frozen=True)
class SelectionConfig(ConfigBlock):
    SCHEMA: ClassVar[str] = "#/$defs/selection"
    enabled: bool
    epochs: int
    max_steps_per_epoch: int | None


@dataclass(frozen=True)
class SearchAdvantageConfig(ConfigBlock):
    SCHEMA: ClassVar[str] = "#/$defs/search_advantage"
    enabled: bool
    num_cells: int
    epochs: int | None
    max_steps_per_epoch: int | None
    train_samples: int | None


@dataclass(frozen=True)
class FixedCellConfig(ConfigBlock):
    SCHEMA: ClassVar[str] = "#/$defs/baselines/properties/fixed_cell"
    genotype: str | None


def matched_candidate_epochs(cfg: RandomSearchConfig, search_epochs: int | None) -> int:
    """Epochs per random-search candidate: the search's epochs shared among the candidates, or as configured."""
    if not cfg.match_search_budget or not search_epochs:
        return cfg.candidate_epochs
    return max(1, round(search_epochs / cfg.num_candidates))


@dataclass(frozen=True)
class DataConfig:
    """The data-preparation slice of a dataset block (kind, source, target, pad_rows, split)."""

    kind: str
    source: SourceConfig
    target: str
    pad_rows: int
    split: SplitConfig

    KEYS: ClassVar[tuple[str, ...]] = ("kind", "source", "target", "pad_rows", "split")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "DataConfig":
        from workflow_lib.config.checks import kind_source_types
        from workflow_lib.config.load import _schema_at, SCHEMA_PATH, fill_defaults, schema_node

        root = _schema_at(str(SCHEMA_PATH))
        block = fill_defaults(dict(values), schema_node("#/$defs/dataset", root), root)
        source = dict(block["source"])
        if source.get("type") is None:
            source["type"] = kind_source_types(block["kind"])[0]
        return cls(kind=block["kind"], source=SourceConfig.from_dict(source), target=block["target"],
                   pad_rows=block["pad_rows"], split=SplitConfig.from_dict(block["split"]))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
