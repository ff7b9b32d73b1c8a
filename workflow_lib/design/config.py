"""Typed settings of the design stage and of the learning curves (blocks ``design`` / ``learning_curves``).

No defaults here on purpose: config/schema.yaml is the one source of defaults (see
config/schema.yaml, $defs/design and $defs/learning_curves); ``from_dict`` takes the validated block, defaults already filled, and
names any missing or unknown key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

from workflow_lib.errors import UserError

T = TypeVar("T")


class DesignError(UserError, ValueError):
    """Bad design / learning-curve settings or data (the CLI reports it as one line)."""


DESIGN_MODELS = ("random_forest", "tiny_resnet", "darts", "random")
CURVE_METHODS = ("random_forest", "tiny_resnet", "resnet18", "darts")


def build(cls: type[T], values: dict[str, Any] | None, block: str, nested: dict[str, type] | None = None) -> T:
    """``cls(**values)`` after checking the keys; ``nested`` maps keys to dataclasses built recursively."""
    values = dict(values or {})
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(names))
    missing = [name for name in names if name not in values]
    if unknown or missing:
        raise DesignError(f"{block}: unknown keys {unknown}, missing keys {missing} "
                          "(the block must come from the validated config, defaults filled)")
    for key, sub in (nested or {}).items():
        values[key] = build(sub, values[key], f"{block}.{key}")
    return cls(**values)


@dataclass(frozen=True)
class ForestSettings:
    """Random forest on the 15 coarse cut bits (Hanakata et al. 2018 searched with such cheap models too)."""

    n_estimators: int
    max_depth: int | None
    min_samples_leaf: int
    max_features: float | str | None


@dataclass(frozen=True)
class NetTraining:
    """SGD + cosine schedule of a network retrained from scratch every generation (engine ``fit``)."""

    epochs: int
    batch_size: int
    lr: float
    momentum: float
    weight_decay: float
    grad_clip: float
    max_steps_per_epoch: int | None


@dataclass(frozen=True)
class TinyResnetSettings(NetTraining):
    width: int


@dataclass(frozen=True)
class DartsSettings(NetTraining):
    genotype: str | None  # a GENOTYPES name; None = the dataset's search genotype (genotype_path)
    C: int
    layers: int


@dataclass(frozen=True)
class DesignConfig:
    enabled: bool
    seeds: list[int] | None  # None = the workflow's seeds
    models: list[str]
    n_initial: int
    per_generation: int
    generations: int
    top_k: list[int]
    n_top_designs: int
    input_stride: list[int]  # [rows, columns] kept for the networks' images (engine.inputs)
    random_forest: ForestSettings
    tiny_resnet: TinyResnetSettings
    darts: DartsSettings

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "DesignConfig":
        cfg = build(cls, values, "design", {"random_forest": ForestSettings, "tiny_resnet": TinyResnetSettings,
                                            "darts": DartsSettings})
        bad = sorted(set(cfg.models) - set(DESIGN_MODELS))
        if bad:
            raise DesignError(f"design.models: unknown {bad}; known: {list(DESIGN_MODELS)}")
        return cfg

    @property
    def simulations(self) -> int:
        """The budget of every run, guided or random: n0 + G * k."""
        return self.n_initial + self.generations * self.per_generation

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class LearningCurvesConfig:
    enabled: bool
    seeds: list[int] | None  # None = the workflow's seeds
    methods: list[str]
    sizes: list[int | str]  # training-set sizes; "all" = the whole training split
    max_epochs: int | None  # cap on each method's epochs per point; None = the method's own epochs
    max_steps_per_epoch: int | None  # cap on steps per epoch per point; None = the method's own setting

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "LearningCurvesConfig":
        cfg = build(cls, values, "learning_curves")
        bad = sorted(set(cfg.methods) - set(CURVE_METHODS))
        if bad:
            raise DesignError(f"learning_curves.methods: unknown {bad}; known: {list(CURVE_METHODS)}")
        if any(s != "all" and (not isinstance(s, int) or s < 1) for s in cfg.sizes):
            raise DesignError(f"learning_curves.sizes: positive integers or 'all', got {cfg.sizes}")
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
