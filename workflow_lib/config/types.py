"""Typed views of the validated configuration (one dataclass per block of config/schema.yaml)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T", bound="ConfigBlock")


class ConfigBlock:
    """Mixin: build a dataclass from a validated dict (schema defaults already filled)."""

    @classmethod
    def from_dict(cls: type[T], values: dict[str, Any] | None) -> T:
        values = dict(values or {})
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown keys {unknown}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


@dataclass(frozen=True)
class DeviceConfig(ConfigBlock):
    type: str = "cpu"
    allow_cpu_fallback: bool = False
    bf16: bool = False
    channels_last: bool = False
    threads: int = 0


@dataclass(frozen=True)
class ResourcesConfig(ConfigBlock):
    gpu: int = 0
    threads: int = 2
    mem_mb: int = 4000
    runtime: int = 60


@dataclass(frozen=True)
class SplitConfig(ConfigBlock):
    test_fraction: float = 0.2
    search_val_fraction: float = 0.5
    seed: int = 42


@dataclass(frozen=True)
class SourceConfig(ConfigBlock):
    type: str = "surrogate"
    url: str = ""
    path: str | None = None
    n_patterns: int | None = None
    subset: int | None = None
    seed: int = 0
    task: str = "classification"
    download: bool = True


@dataclass(frozen=True)
class SearchConfig(ConfigBlock):
    epochs: int = 50
    batch_size: int = 64
    C: int = 16
    layers: int = 8
    order: str = "first"
    w_lr: float = 0.025
    w_lr_min: float = 0.001
    w_momentum: float = 0.9
    w_weight_decay: float = 3e-4
    w_grad_clip: float = 5.0
    alpha_lr: float = 3e-4
    alpha_beta1: float = 0.5
    alpha_beta2: float = 0.999
    alpha_weight_decay: float = 1e-3
    l1_alpha: float = 0.0
    entropy_alpha: float = 0.0
    max_steps_per_epoch: int | None = None
    cutout_length: int = 0


@dataclass(frozen=True)
class TrainConfig(ConfigBlock):
    genotype: str | None = None
    epochs: int = 600
    batch_size: int = 96
    C: int = 36
    layers: int = 20
    lr: float = 0.025
    lr_min: float = 0.0
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    auxiliary: bool = True
    auxiliary_weight: float = 0.4
    drop_path_prob: float = 0.2
    cutout_length: int = 0
    max_steps_per_epoch: int | None = None


@dataclass(frozen=True)
class CNNBaselineConfig(ConfigBlock):
    epochs: int = 100
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    grad_clip: float = 5.0
    cutout_length: int = 0
    max_steps_per_epoch: int | None = None


@dataclass(frozen=True)
class RandomForestConfig(ConfigBlock):
    n_estimators: int = 500
    max_depth: int | None = None
    min_samples_leaf: int = 1
    max_features: float | str | None = 1.0
    n_jobs: int = -1


@dataclass(frozen=True)
class RandomSearchConfig(ConfigBlock):
    num_candidates: int = 8
    candidate_epochs: int = 5
    match_search_budget: bool = True
    C: int = 16
    layers: int = 8
    batch_size: int = 64
    max_steps_per_epoch: int | None = None


def matched_candidate_epochs(cfg: RandomSearchConfig, search_epochs: int | None) -> int:
    """Epochs per random-search candidate: the search's epochs shared among the candidates, or as configured."""
    if not cfg.match_search_budget or not search_epochs:
        return cfg.candidate_epochs
    return max(1, round(search_epochs / cfg.num_candidates))


@dataclass(frozen=True)
class DataConfig(ConfigBlock):
    """The data-preparation slice of a dataset block."""

    kind: str
    source: SourceConfig = field(default_factory=SourceConfig)
    target: str = "yield_strain"
    pad_rows: int = 1
    split: SplitConfig = field(default_factory=SplitConfig)

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> "DataConfig":
        values = dict(values or {})
        return cls(
            kind=values["kind"],
            source=SourceConfig.from_dict(values.get("source")),
            target=values.get("target", "yield_strain"),
            pad_rows=values.get("pad_rows", 1),
            split=SplitConfig.from_dict(values.get("split")),
        )
