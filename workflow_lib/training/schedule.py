"""How a network is trained: the optimiser, its learning-rate schedule and the per-run training knobs.

``Schedule`` is built from a TrainConfig (final training of a cell), a CNNBaselineConfig (ResNets) or the
search's weight settings (random-search candidates). ``make_optimizer`` and ``lr_at`` turn it into torch.
DARTS trains with SGD (momentum, no Nesterov) and a cosine schedule to ``lr_min`` (Liu et al. 2019, App. A);
the 2019 kirigami study trained its ResNets with Adam at a constant 1e-3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import torch

from workflow_lib.config.types import CNNBaselineConfig, TrainConfig
from workflow_lib.engine import cosine_lr

OPTIMIZERS = ("sgd", "adam")
LR_SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True)
class Schedule:
    epochs: int
    batch_size: int
    lr: float
    lr_min: float = 0.0
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float | None = 5.0
    aux_weight: float = 0.0
    drop_path_prob: float = 0.0
    cutout_length: int = 0
    max_steps_per_epoch: int | None = None
    eval_each_epoch: bool = True
    optimizer: str = "sgd"
    betas: tuple[float, float] = (0.9, 0.999)
    lr_schedule: str = "cosine"
    input_stride: tuple[int, int] = (1, 1)
    eval_samples: int | None = None  # the per-epoch curve on a fixed subset; the final score uses all

    @classmethod
    def from_train_config(cls, cfg: TrainConfig) -> "Schedule":
        return cls(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, lr_min=cfg.lr_min,
                   momentum=cfg.momentum, weight_decay=cfg.weight_decay, grad_clip=cfg.grad_clip,
                   aux_weight=cfg.auxiliary_weight if cfg.auxiliary else 0.0, drop_path_prob=cfg.drop_path_prob,
                   cutout_length=cfg.cutout_length, max_steps_per_epoch=cfg.max_steps_per_epoch,
                   input_stride=tuple(cfg.input_stride), eval_samples=cfg.eval_samples)

    @classmethod
    def from_cnn_config(cls, cfg: CNNBaselineConfig) -> "Schedule":
        return cls(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, lr_min=0.0, momentum=cfg.momentum,
                   weight_decay=cfg.weight_decay, grad_clip=cfg.grad_clip, cutout_length=cfg.cutout_length,
                   max_steps_per_epoch=cfg.max_steps_per_epoch, optimizer=cfg.optimizer,
                   betas=(cfg.adam_beta1, cfg.adam_beta2), lr_schedule=cfg.lr_schedule,
                   input_stride=tuple(cfg.input_stride), eval_samples=cfg.eval_samples)


def make_optimizer(params: Iterable[torch.nn.Parameter], schedule: Schedule) -> torch.optim.Optimizer:
    if schedule.optimizer == "sgd":
        return torch.optim.SGD(params, lr=schedule.lr, momentum=schedule.momentum,
                               weight_decay=schedule.weight_decay, nesterov=False)
    if schedule.optimizer == "adam":
        return torch.optim.Adam(params, lr=schedule.lr, betas=schedule.betas, weight_decay=schedule.weight_decay)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {schedule.optimizer!r}")


def lr_at(schedule: Schedule, epoch: int) -> float:
    """The learning rate of 0-based ``epoch``."""
    if schedule.lr_schedule == "constant":
        return schedule.lr
    if schedule.lr_schedule == "cosine":
        return cosine_lr(epoch, schedule.epochs, schedule.lr, schedule.lr_min)
    raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {schedule.lr_schedule!r}")
