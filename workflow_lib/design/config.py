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
NETWORK_MODELS = ("tiny_resnet", "darts")
ACQUISITIONS = ("greedy", "ucb", "ei")
BATCH_RULES = ("top", "diverse")
ORACLES = ("lookup", "command")
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
    genotype: str | None  # a GENOTYPES name or genotype JSON file (stage.design_settings fills train.genotype)
    C: int
    layers: int


@dataclass(frozen=True)
class PickerSettings:
    """One picker: a model, an acquisition over its mean (and spread), a batch rule (config/schema.yaml,
    $defs/design_picker)."""

    model: str
    acquisition: str
    kappa: float
    xi: float
    ensemble: int
    batch: str
    min_distance: float

    @property
    def guided(self) -> bool:
        return self.model != "random"


def picker_problems(picker: dict[str, Any], forest_trees: int) -> list[str]:
    """What is wrong with one picker's settings (shared by the config checks and ``DesignConfig``)."""
    problems = []
    model, acquisition = picker["model"], picker["acquisition"]
    if model == "random" and (acquisition != "greedy" or picker["batch"] != "top" or picker["ensemble"] != 1):
        problems.append("the random picker has no model: leave acquisition, batch and ensemble at their defaults")
    spread = (model == "random_forest" and forest_trees >= 2) or (model in NETWORK_MODELS and picker["ensemble"] >= 2)
    if acquisition in ("ucb", "ei") and not spread:
        problems.append(f"acquisition {acquisition} needs a spread: the random forest (n_estimators >= 2) or "
                        "a network ensemble (ensemble >= 2)")
    if model == "random_forest" and picker["ensemble"] != 1:
        problems.append("ensemble is for networks; the random forest's spread comes from its trees")
    return problems


@dataclass(frozen=True)
class OracleResources:
    threads: int
    mem_mb: int
    runtime: int


@dataclass(frozen=True)
class OracleSettings:
    type: str  # lookup | command
    command: str | None
    batch: int
    retries: int
    resources: OracleResources


@dataclass(frozen=True)
class DesignConfig:
    enabled: bool
    seeds: list[int] | None  # None = the workflow's seeds
    pickers: dict[str, PickerSettings]
    n_initial: int
    per_generation: int
    generations: int
    top_k: list[int]
    n_top_designs: int
    oracle: OracleSettings
    input_stride: list[int]  # [rows, columns] kept for the networks' images (engine.inputs)
    random_forest: ForestSettings
    tiny_resnet: TinyResnetSettings
    darts: DartsSettings

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "DesignConfig":
        values = dict(values or {})
        pickers = values.get("pickers")
        if isinstance(pickers, dict):
            values["pickers"] = {name: build(PickerSettings, p, f"design.pickers.{name}")
                                 for name, p in pickers.items()}
        oracle = values.get("oracle")
        if isinstance(oracle, dict):
            values["oracle"] = build(OracleSettings, oracle, "design.oracle",
                                     {"resources": OracleResources})
        cfg = build(cls, values, "design", {"random_forest": ForestSettings, "tiny_resnet": TinyResnetSettings,
                                            "darts": DartsSettings})
        for name, picker in cfg.pickers.items():
            if picker.model not in DESIGN_MODELS:
                raise DesignError(f"design.pickers.{name}.model: unknown {picker.model!r}; "
                                  f"known: {list(DESIGN_MODELS)}")
            problems = picker_problems(dataclasses.asdict(picker), cfg.random_forest.n_estimators)
            if problems:
                raise DesignError(f"design.pickers.{name}: {problems[0]}")
        if cfg.oracle.type not in ORACLES:
            raise DesignError(f"design.oracle.type: unknown {cfg.oracle.type!r}; known: {list(ORACLES)}")
        if cfg.oracle.type == "command" and not cfg.oracle.command:
            raise DesignError("design.oracle.command: the command oracle needs a command")
        return cfg

    @property
    def simulations(self) -> int:
        """The budget of every run, guided or random: n0 + G * k."""
        return self.n_initial + self.generations * self.per_generation

    @property
    def models(self) -> list[str]:
        """The models the pickers use, each once, in picker order."""
        return list(dict.fromkeys(p.model for p in self.pickers.values()))

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


def slot_counts(design: dict[str, Any], n_seeds: int) -> list[int]:
    """Simulation jobs of each generation (command oracle): enough for every design the generation could ask
    for (generation 0: n_initial per seed, shared by its pickers; later ones: per_generation per run) at
    ``oracle.batch`` designs per job. Designs already known leave the last slots empty."""
    batch, runs = design["oracle"]["batch"], len(design["pickers"]) * n_seeds
    first = -(-n_seeds * design["n_initial"] // batch)
    return [first] + [-(-runs * design["per_generation"] // batch)] * design["generations"]
