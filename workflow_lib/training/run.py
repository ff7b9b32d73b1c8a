"""Final training of a CNN with the engine, and the method artifacts of docs/DESIGN.md.

- ``run_training(stage, data, genotype, out_dir, checkpoint_dir, seed, method_name="darts",
  train_config=None) -> dict`` trains the DARTS evaluation network of ``genotype`` (TrainConfig: SGD momentum
  without Nesterov, cosine lr -> lr_min, weight decay, grad-norm clip, auxiliary head weight, drop path ramped
  ``drop_path_prob * epoch / epochs`` (0-based epoch, as in the DARTS code), cutout when ``cutout_length > 0``)
  on ``data.train_index``, evaluates on ``data.test_index`` after every epoch (the test curve, never used for
  selection) and writes ``metrics.json``, ``curves.csv``, ``predictions.csv`` into ``out_dir``. Returns the
  metrics document. ``genotype``: Genotype | dict | GENOTYPES name | genotype.json path | None (then
  ``TrainConfig.genotype`` must name one). ``train_config`` overrides the stage's settings (the random-search
  stage passes its ``train`` block; a stage whose settings hold {"random_search", "train"} is also understood).
- ``fit(build, data, schedule, train_index, eval_index, device_cfg, checkpoint_path, seed, ...) -> FitResult``:
  the generic loop (also used by the CNN baselines and the random-search candidates).
- ``write_method_artifacts(out_dir, ...)``: the three files from a FitResult.

Checkpoints: ``checkpoint_dir/ckpt.pt`` after every epoch (kept after success; it lives outside the declared
outputs). A rerun resumes and ends bitwise identical on the CPU; a finished checkpoint just re-evaluates.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn as nn

from workflow_lib.config.types import DeviceConfig, TrainConfig
from workflow_lib.engine import (
    Batches,
    Cutout,
    EpochLoop,
    Task,
    autocast_factory,
    cosine_lr,
    device_label,
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
from workflow_lib.models.registry import count_parameters, darts_eval, resolve_genotype
from workflow_lib.provenance import run_info
from workflow_lib.results.writers import write_curves, write_metrics, write_predictions

log = logging.getLogger("workflow_lib.training")

EVAL_BATCH = 512


@dataclass(frozen=True)
class Schedule:
    """How a network is trained (SGD + cosine schedule); built from TrainConfig / CNNBaselineConfig."""

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

    @classmethod
    def from_train_config(cls, cfg: TrainConfig) -> "Schedule":
        return cls(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, lr_min=cfg.lr_min,
                   momentum=cfg.momentum, weight_decay=cfg.weight_decay, grad_clip=cfg.grad_clip,
                   aux_weight=cfg.auxiliary_weight if cfg.auxiliary else 0.0, drop_path_prob=cfg.drop_path_prob,
                   cutout_length=cfg.cutout_length, max_steps_per_epoch=cfg.max_steps_per_epoch)


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
    extra: dict[str, Any] = field(default_factory=dict)


def data_tensors(data: Any, device: torch.device, task: Task) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.as_tensor(np.asarray(data.x), dtype=torch.float32).to(device)
    y = torch.as_tensor(np.asarray(data.y)).to(task.target_dtype()).to(device)
    return x, y


def index_digest(index: Sequence[int] | np.ndarray) -> str:
    """Short hash of a row selection (which samples a model trains on)."""
    array = np.ascontiguousarray(np.asarray(index, dtype=np.int64))
    return hashlib.sha256(array.tobytes()).hexdigest()[:16]


def device_identity(device_cfg: DeviceConfig) -> dict[str, Any]:
    """The device settings a trained result depends on (threads only change the speed)."""
    return {"type": device_cfg.type, "bf16": device_cfg.bf16, "channels_last": device_cfg.channels_last}


def run_fingerprint(data: Any, train_index: Sequence[int] | np.ndarray, device_cfg: DeviceConfig, *parts: Any) -> str:
    """What a checkpoint must match to be resumed: the data (digest incl. split), the training rows, the
    device settings and the caller's parts (settings, genotype, seed)."""
    return fingerprint_of(data.digest(), index_digest(train_index), device_identity(device_cfg), *parts)


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
    tensors: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> FitResult:
    """Seed, build, train with SGD + cosine lr for schedule.epochs (checkpointed), evaluate on eval_index.

    ``fingerprint``: the caller's identity of the run (settings, genotype, ...); the checkpoint's fingerprint
    adds the schedule, seed, the data's digest, the training rows and the device settings to it.
    """
    device_cfg = device_cfg or DeviceConfig.defaults()
    device = resolve_device(device_cfg)
    seed_everything(seed)
    train_index = np.asarray(train_index, dtype=np.int64)
    eval_index = np.asarray(eval_index, dtype=np.int64)
    task = Task.from_prepared(data, train_index)
    x, y = tensors if tensors is not None else data_tensors(data, device, task)
    model = to_channels_last(build().to(device), device_cfg.channels_last)
    amp = autocast_factory(device, device_cfg.bf16)
    transform = Cutout(schedule.cutout_length) if schedule.cutout_length > 0 else None
    batches = Batches(x, y, schedule.batch_size, shuffle=True, generator=make_generator(seed),
                      transform=transform, index=train_index, max_steps=schedule.max_steps_per_epoch)
    optimizer = torch.optim.SGD(model.parameters(), lr=schedule.lr, momentum=schedule.momentum,
                                weight_decay=schedule.weight_decay, nesterov=False)
    eval_kw = dict(batch_size=EVAL_BATCH, autocast=amp, channels_last=device_cfg.channels_last)

    def epoch_fn(epoch: int) -> dict[str, Any]:
        lr = cosine_lr(epoch, schedule.epochs, schedule.lr, schedule.lr_min)
        set_lr(optimizer, lr)
        if hasattr(model, "drop_path_prob"):
            model.drop_path_prob = schedule.drop_path_prob * epoch / schedule.epochs
        row = train_epoch(model, batches, optimizer, task, grad_clip=schedule.grad_clip,
                          aux_weight=schedule.aux_weight, autocast=amp, channels_last=device_cfg.channels_last)
        row.pop("seconds")  # the loop measures the whole epoch (training + test evaluation)
        row["lr"] = lr
        if schedule.eval_each_epoch:
            ev = evaluate(model, x, y, task, index=eval_index, **eval_kw)
            row["test_loss"] = ev["loss"]
            row["test_metric"] = ev["metric"]
        return row

    loop = EpochLoop(checkpoint_path, {"model": model, "optimizer": optimizer, "batches": batches},
                     schedule.epochs, log=log, name=name,
                     fingerprint=run_fingerprint(data, train_index, device_cfg, fingerprint, asdict(schedule), int(seed)))
    history = loop.run(epoch_fn)
    evaluation = evaluate(model, x, y, task, index=eval_index, **eval_kw)
    predictions = predict(model, x, task, index=eval_index, **eval_kw).numpy()
    return FitResult(
        model=model, task=task, device=device, history=history, evaluation=evaluation,
        predictions=predictions, eval_index=eval_index, y_true=np.asarray(data.y)[eval_index],
        parameters=count_parameters(model), train_seconds=float(sum(r.get("seconds", 0.0) for r in history)),
    )


def metrics_block(evaluation: dict[str, float]) -> dict[str, float]:
    """The metrics.json ``test`` block: the task metrics plus loss (the generic ``metric`` alias dropped)."""
    return {k: v for k, v in evaluation.items() if k != "metric"}


def write_method_artifacts(
    out_dir: str | Path,
    *,
    method: str,
    dataset: str,
    seed: int,
    task: Task,
    parameters: int,
    train_seconds: float,
    device: str,
    epochs: int,
    test: dict[str, float],
    config: dict[str, Any],
    stage_document: dict[str, Any],
    history: list[dict[str, Any]],
    index: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    genotype: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write predictions.csv, curves.csv and (last) metrics.json; return the metrics document."""
    out_dir = Path(out_dir)
    document: dict[str, Any] = {
        "method": method,
        "dataset": dataset,
        "seed": int(seed),
        "task": task.kind,
        "metric": task.metric_name,
        "parameters": int(parameters),
        "train_seconds": float(train_seconds),
        "device": device,
        "epochs": int(epochs),
        "test": test,
        "config": config,
    }
    if task.regression:
        document["target_scaling"] = {"mean": task.mean, "std": task.std}
    if genotype is not None:
        document["genotype"] = genotype
    document.update(extra or {})
    document["run_info"] = run_info(stage_document, seed, device)
    write_predictions(out_dir / "predictions.csv", index, y_true, y_pred)
    write_curves(out_dir / "curves.csv", history)
    write_metrics(out_dir / "metrics.json", document)
    return document


def train_settings(stage: Any) -> dict[str, Any]:
    settings = stage.settings
    if isinstance(settings, dict) and "random_search" in settings and "train" in settings:
        return settings["train"]
    return settings


def run_training(
    stage: Any,
    data: Any,
    genotype: Any,
    out_dir: str | Path,
    checkpoint_dir: str | Path,
    seed: int,
    method_name: str = "darts",
    train_config: TrainConfig | dict | None = None,
) -> dict[str, Any]:
    if train_config is None:
        cfg = TrainConfig.from_dict(train_settings(stage))
    elif isinstance(train_config, dict):
        cfg = TrainConfig.from_dict(train_config)
    else:
        cfg = train_config
    if genotype is None:
        if cfg.genotype is None:
            raise ValueError("run_training: no genotype given and train.genotype is null")
        genotype = cfg.genotype
    genotype = resolve_genotype(genotype)
    if cfg.cutout_length > 0 and getattr(stage, "kind", None) == "kirigami":
        log.warning("cutout_length=%d on a kirigami dataset (the 2019 study used none)", cfg.cutout_length)
    schedule = Schedule.from_train_config(cfg)

    def build() -> nn.Module:
        return darts_eval(int(data.in_channels), int(data.out_dim), genotype=genotype, C=cfg.C,
                          layers=cfg.layers, auxiliary=cfg.auxiliary)

    t0 = time.perf_counter()
    result = fit(build, data, schedule, data.train_index, data.test_index, stage.device,
                 Path(checkpoint_dir) / "ckpt.pt", seed, name=f"{method_name} seed {seed}",
                 fingerprint=fingerprint_of(cfg.to_dict(), genotype.to_dict(), int(seed), method_name))
    log.info("%s seed %d: test %s (%.1f s)", method_name, seed,
             {k: round(v, 4) for k, v in metrics_block(result.evaluation).items()}, time.perf_counter() - t0)
    return write_method_artifacts(
        out_dir, method=method_name, dataset=stage.dataset, seed=seed, task=result.task,
        parameters=result.parameters, train_seconds=result.train_seconds, device=device_label(result.device),
        epochs=len(result.history), test=metrics_block(result.evaluation), config=cfg.to_dict(),
        stage_document=stage.to_dict(), history=result.history, index=result.eval_index,
        y_true=result.y_true, y_pred=result.predictions, genotype=genotype.to_dict(),
    )


def train_step(stage: Any, data_path: str | Path, genotype_path: str | Path | None, out_dir: str | Path,
               checkpoint_dir: str | Path, seed: int) -> dict[str, Any]:
    """CLI entry (``python -m workflow_lib train``): the genotype is ``train.genotype`` when the config names one
    (a GENOTYPES name), else the search's genotype.json given as ``genotype_path``."""
    from workflow_lib.datasets.prepared import PreparedData

    cfg = TrainConfig.from_dict(train_settings(stage))
    if cfg.genotype is not None:
        if genotype_path is not None:
            log.info("train.genotype is %r: using it, not %s", cfg.genotype, genotype_path)
        genotype: Any = cfg.genotype
    elif genotype_path is not None:
        genotype = Path(genotype_path)
    else:
        raise ValueError("train: train.genotype is null (use the search's cell) but no --genotype file was given")
    data = PreparedData.load(data_path)
    return run_training(stage, data, genotype, out_dir, checkpoint_dir, seed, method_name="darts", train_config=cfg)
