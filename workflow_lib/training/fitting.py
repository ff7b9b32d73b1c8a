"""``fit``: train one network with the shared engine (checkpointed, resumable) and evaluate it.

Used by the final training of a DARTS cell, the CNN baselines, the random-search candidates, the design loop
and the learning curves: one loop for all of them. The checkpoint's fingerprint covers everything the result
depends on (``run_fingerprint``), so a resume never mixes settings, data, splits or devices.

Several processes (``device.processes``, ``engine.distributed``): every process builds the same model, which
trains in DistributedDataParallel (BatchNorm synchronised on CUDA) on its slice of each global batch; every
process evaluates a share of the rows and gets all metrics; rank 0 writes.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn as nn

from workflow_lib.config.types import DeviceConfig
from workflow_lib.engine import (
    Batches,
    EpochLoop,
    Task,
    autocast_factory,
    distributed,
    evaluate,
    fingerprint_of,
    make_generator,
    predict,
    resolve_device,
    seed_everything,
    set_lr,
    to_channels_last,
    train_epoch,
)
from workflow_lib.engine.augment import model_inputs, train_transform
from workflow_lib.engine.device import bf16_active, channels_last_policy
from workflow_lib.engine.inputs import strided_shape, subsample
from workflow_lib.models.registry import count_parameters
from workflow_lib.training.schedule import Schedule, lr_at, make_optimizer

log = logging.getLogger("workflow_lib.training")

EVAL_BATCH = 512
CURVE_SUBSET_SEED = 0  # the per-epoch curve's fixed subset is the same for every method and seed


@dataclass
class FitResult:
    model: nn.Module
    task: Task
    device: torch.device
    history: list[dict[str, Any]]
    evaluation: dict[str, float]          # final evaluation on eval_index: loss, metric, task metrics
    predictions: np.ndarray               # decoded predictions on eval_index
    eval_index: np.ndarray
    y_true: np.ndarray
    parameters: int
    train_seconds: float
    budget: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def data_tensors(data: Any, device: torch.device, task: Task,
                 input_stride: Sequence[int] = (1, 1)) -> tuple[torch.Tensor, torch.Tensor]:
    """x (at the given input stride) and y as tensors on the device."""
    x = subsample(torch.as_tensor(np.asarray(data.x), dtype=torch.float32), input_stride).to(device)
    y = torch.as_tensor(np.asarray(data.y)).to(task.target_dtype()).to(device)
    return x, y


def model_tensors(data: Any, device: torch.device, task: Task, input_stride: Sequence[int], augment: Any,
                  fit_rows: Sequence[int] | np.ndarray) -> tuple[torch.Tensor, torch.Tensor, Any]:
    """(x, y, pad value): data_tensors, then normalised with the fit rows' statistics when augment says so."""
    x, y = data_tensors(data, device, task, input_stride)
    x, pad_value = model_inputs(x, np.asarray(fit_rows), augment)
    return x, y, pad_value


def index_digest(index: Sequence[int] | np.ndarray) -> str:
    """Short hash of a row selection (which samples a model trains on)."""
    array = np.ascontiguousarray(np.asarray(index, dtype=np.int64))
    return hashlib.sha256(array.tobytes()).hexdigest()[:16]


def device_identity(device_cfg: DeviceConfig) -> dict[str, Any]:
    """The device settings a trained result depends on (threads only change the speed; the number of
    processes, when more than one, changes the BatchNorm statistics on the CPU and the summation order).

    ``bf16_active`` (present only when bf16 autocast really runs: ``device.bf16`` true or auto on hardware with
    native bf16) keeps a checkpoint written in fp32 from being resumed in bf16 and vice versa, and leaves the
    fingerprints of fp32 runs as they were."""
    identity = {"type": device_cfg.type, "bf16": device_cfg.bf16, "channels_last": device_cfg.channels_last}
    if bf16_active(_device_type(device_cfg), device_cfg.bf16):
        identity["bf16_active"] = True
    world = distributed.current()
    return {**identity, "processes": world.size} if world.distributed else identity


def _device_type(device_cfg: DeviceConfig) -> str:
    """The device type a config runs on, without resolve_device's side effects (threads, fallback warning)."""
    return "cuda" if device_cfg.type == "cuda" and torch.cuda.is_available() else "cpu"


def run_fingerprint(data: Any, train_index: Sequence[int] | np.ndarray, device_cfg: DeviceConfig, *parts: Any) -> str:
    """What a checkpoint must match to be resumed: the data (digest incl. split), the training rows, the
    device settings and the caller's parts (settings, genotype, seed)."""
    return fingerprint_of(data.digest(), index_digest(train_index), device_identity(device_cfg), *parts)


def curve_index(eval_index: np.ndarray, samples: int | None) -> np.ndarray:
    """The rows of the per-epoch curve: all of eval_index, or a fixed seeded subset of ``samples`` of them."""
    if samples is None or samples >= len(eval_index):
        return eval_index
    keep = np.random.default_rng(CURVE_SUBSET_SEED).permutation(len(eval_index))[:samples]
    return np.sort(eval_index[keep])


def training_budget(history: list[dict[str, Any]], input_shape: Sequence[int], schedule: Schedule) -> dict[str, Any]:
    """What a trained result cost, for a fair comparison in the report."""
    return {
        "epochs": len(history),
        "optimizer_steps": int(sum(row.get("steps", 0) or 0 for row in history)),
        "samples_seen": int(sum(row.get("samples", 0) or 0 for row in history)),
        "train_seconds": float(sum(row.get("seconds", 0.0) for row in history)),
        "input_shape": [int(s) for s in input_shape],
        "batch_size": schedule.batch_size,
        "optimizer": schedule.optimizer,
    }


def fit(
    build: Callable[[], nn.Module],
    data: Any,
    schedule: Schedule,
    train_index: Sequence[int] | np.ndarray,
    eval_index: Sequence[int] | np.ndarray,
    device_cfg: DeviceConfig | None,
    checkpoint_path: str | Path | None,
    seed: int,
    name: str = "",
    fingerprint: str | None = None,
    tensors: tuple[torch.Tensor, ...] | None = None,
    augment: Any = None,
    model_kind: str = "network",
) -> FitResult:
    """Seed, build, train for schedule.epochs (checkpointed), evaluate on eval_index.

    ``fingerprint``: the caller's identity of the run (settings, genotype, ...); the checkpoint's fingerprint
    adds the schedule, seed, the data's digest, the training rows and the device settings to it.
    ``tensors``: (x, y[, pad value]) already on the device at ``schedule.input_stride`` and normalised
    (shared by random-search candidates); ``augment``: an AugmentConfig (crop, flip, normalisation) or None;
    ``model_kind`` (darts_eval, resnet18, tiny_resnet, ...) picks the memory layout (channels_last_policy).
    """
    device_cfg = device_cfg or DeviceConfig.defaults()
    device = resolve_device(device_cfg)
    seed_everything(seed)
    train_index = np.asarray(train_index, dtype=np.int64)
    eval_index = np.asarray(eval_index, dtype=np.int64)
    task = Task.from_prepared(data, train_index)
    if tensors is None:
        tensors = model_tensors(data, device, task, schedule.input_stride, augment, train_index)
    x, y = tensors[0], tensors[1]
    channels_last, why = channels_last_policy(model_kind, x.shape[1:], device, device_cfg.channels_last)
    log.info("%s: %s layout (%s)", name or model_kind, "channels_last" if channels_last else "default", why)
    model = distributed.sync_batchnorm(to_channels_last(build().to(device), channels_last))
    # an auxiliary head whose loss has no weight gets no gradient (and is not trained): DDP leaves it alone
    idle = [name for name, _ in model.named_parameters() if name.startswith("auxiliary_head.")]
    net = distributed.data_parallel(model, ignore=idle if schedule.aux_weight == 0 else ())
    distributed.seed_rank(seed)
    amp = autocast_factory(device, device_cfg.bf16)
    if amp is not None:
        log.info("%s: bf16 autocast (device.bf16: %s)", name or model_kind, device_cfg.bf16)
    transform = train_transform(augment, schedule.cutout_length, tensors[2] if len(tensors) > 2 else 0.0)
    batches = Batches(x, y, schedule.batch_size, shuffle=True, generator=make_generator(seed),
                      transform=transform, index=train_index, max_steps=schedule.max_steps_per_epoch)
    optimizer = make_optimizer(model.parameters(), schedule)
    eval_kw = dict(batch_size=EVAL_BATCH, autocast=amp, channels_last=channels_last)
    curve_rows = curve_index(eval_index, schedule.eval_samples)

    def epoch_fn(epoch: int) -> dict[str, Any]:
        lr = lr_at(schedule, epoch)
        set_lr(optimizer, lr)
        if hasattr(model, "drop_path_prob"):
            model.drop_path_prob = schedule.drop_path_prob * epoch / schedule.epochs
        row = train_epoch(net, batches, optimizer, task, grad_clip=schedule.grad_clip,
                          aux_weight=schedule.aux_weight, autocast=amp, channels_last=channels_last)
        distributed.sync_buffers(model)  # BatchNorm running statistics: rank 0's in every process
        row.pop("seconds")  # the loop measures the whole epoch (training + test evaluation)
        row["lr"] = lr
        if schedule.eval_each_epoch:
            ev = evaluate(model, x, y, task, index=curve_rows, **eval_kw)
            row["test_loss"] = ev["loss"]
            row["test_metric"] = ev["metric"]
        return row

    loop = EpochLoop(checkpoint_path, {"model": model, "optimizer": optimizer, "batches": batches},
                     schedule.epochs, log=log, name=name,
                     fingerprint=run_fingerprint(data, train_index, device_cfg, fingerprint, asdict(schedule), int(seed),
                                                 augment.to_dict() if augment is not None else None))
    history = loop.run(epoch_fn)
    evaluation = evaluate(model, x, y, task, index=eval_index, **eval_kw)
    predictions = predict(model, x, task, index=eval_index, **eval_kw).numpy()
    return FitResult(
        model=model, task=task, device=device, history=history, evaluation=evaluation,
        predictions=predictions, eval_index=eval_index, y_true=np.asarray(data.y)[eval_index],
        parameters=count_parameters(model), train_seconds=float(sum(r.get("seconds", 0.0) for r in history)),
        budget=training_budget(history, x.shape[1:], schedule),
    )
