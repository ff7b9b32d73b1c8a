"""One training epoch, evaluation and prediction; shared by search, final training and CNN baselines.

- ``split_output(out) -> (logits, aux | None)``: models may return a tensor or a tuple (logits, aux).
- ``train_epoch(model, batches, optimizer, task, grad_clip=None, aux_weight=0.0, autocast=None,
  channels_last=False) -> {"train_loss", "train_metric", "steps", "samples", "seconds"}``: model.train(); per batch
  loss = task.loss(logits) (+ aux_weight * task.loss(aux) when the model returns an aux output and
  aux_weight > 0), backward, grad-norm clip, optimizer.step(). train_loss = sample-weighted mean of the main
  loss; train_metric = task.metric_name over the epoch's (train-mode) predictions. In a training of several
  processes (``engine.distributed``; ``model`` in DistributedDataParallel, ``batches`` sharded) both are
  over every process's rows, the same in each process.
- ``evaluate(model, x, y, task, batch_size=256, index=None, autocast=None, channels_last=False)
  -> {"loss", "metric", **task.metrics}`` (eval mode, no grad; y in original units). With several processes
  each evaluates a contiguous share of the rows and the outputs are gathered: every process gets the metrics
  of all rows (pass the bare model, not its DistributedDataParallel wrapper).
- ``predict(model, x, task, batch_size=256, index=None, ...) -> tensor`` of decoded predictions
  (original units | class ids) on the CPU.
- ``cosine_lr(epoch, total_epochs, lr_max, lr_min)``: CosineAnnealingLR(T_max=total_epochs) at 0-based
  ``epoch``; ``set_lr(optimizer, lr)``.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any, Callable, ContextManager, Sequence

import numpy as np
import torch
import torch.nn as nn

from workflow_lib.engine import distributed
from workflow_lib.engine.task import Task

Autocast = Callable[[], ContextManager] | None


def split_output(out: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(out, (tuple, list)):
        logits = out[0]
        aux = out[1] if len(out) > 1 else None
        return logits, aux
    return out, None


def _ctx(autocast: Autocast) -> ContextManager:
    return autocast() if autocast is not None else contextlib.nullcontext()


def _prep(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x


def cosine_lr(epoch: int, total_epochs: int, lr_max: float, lr_min: float = 0.0) -> float:
    if total_epochs <= 0:
        return lr_max
    return lr_min + 0.5 * (lr_max - lr_min) * (1.0 + math.cos(math.pi * epoch / total_epochs))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def train_epoch(
    model: nn.Module,
    batches: Any,
    optimizer: torch.optim.Optimizer,
    task: Task,
    grad_clip: float | None = None,
    aux_weight: float = 0.0,
    autocast: Autocast = None,
    channels_last: bool = False,
) -> dict[str, Any]:
    model.train()
    t0 = time.perf_counter()
    total_loss = 0.0
    seen = 0
    steps = 0
    preds: list[torch.Tensor] = []
    targets: list[torch.Tensor] = []
    params = [p for p in model.parameters() if p.requires_grad]
    for xb, yb in batches:
        xb = _prep(xb, channels_last)
        target = task.encode(yb)
        optimizer.zero_grad(set_to_none=True)
        with _ctx(autocast):
            logits, aux = split_output(model(xb))
            loss = task.loss(logits, target)
            full = loss + aux_weight * task.loss(aux, target) if (aux is not None and aux_weight > 0) else loss
        full.backward()
        if grad_clip:
            nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        n = yb.shape[0]
        total_loss += loss.detach().item() * n
        seen += n
        steps += 1
        preds.append(task.decode(logits.detach().float()).cpu())  # bf16 logits under autocast
        targets.append(yb.detach().cpu())
    total_loss, seen = distributed.sum_values([total_loss, seen])  # every process's rows (as they are)
    seen = int(seen)
    seconds = time.perf_counter() - t0
    if seen == 0:
        return {"train_loss": float("nan"), "train_metric": float("nan"), "steps": 0, "samples": 0, "seconds": seconds}
    metrics = task.metrics(distributed.gather_equal(torch.cat(preds)), distributed.gather_equal(torch.cat(targets)))
    return {
        "train_loss": total_loss / seen,
        "train_metric": metrics[task.metric_name],
        "steps": steps,
        "samples": seen,
        "seconds": seconds,
    }


def _rows(n: int, index: Sequence[int] | np.ndarray | torch.Tensor | None) -> torch.Tensor:
    if index is None:
        return torch.arange(n)
    return torch.as_tensor(np.asarray(index), dtype=torch.long)


@torch.no_grad()
def _outputs(model: nn.Module, x: torch.Tensor, rows: torch.Tensor, batch_size: int, autocast: Autocast,
             channels_last: bool) -> list[tuple[torch.Tensor, torch.Tensor]]:
    was_training = model.training
    model.eval()
    out = []
    try:
        for start in range(0, rows.numel(), batch_size):
            r = rows[start:start + batch_size].to(x.device)
            with _ctx(autocast):
                logits, _ = split_output(model(_prep(x.index_select(0, r), channels_last)))
            out.append((logits.float(), r))
    finally:
        model.train(was_training)
    return out


@torch.no_grad()
def _all_outputs(model: nn.Module, x: torch.Tensor, rows: torch.Tensor, batch_size: int, autocast: Autocast,
                 channels_last: bool) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``_outputs`` of every row, also with several processes: rank r computes the r-th contiguous share of
    ``rows``, the shares are gathered in order, and every process gets the 1-process list of (outputs, rows)
    per ``batch_size`` rows."""
    world = distributed.current()
    if not world.distributed or not rows.numel():
        return _outputs(model, x, rows, batch_size, autocast, channels_last)
    shares = torch.tensor_split(rows, world.size)
    mine = [logits for logits, _ in _outputs(model, x, shares[world.rank], batch_size, autocast, channels_last)]
    width = distributed.broadcast_object(tuple(mine[0].shape[1:]) if mine else None, world)  # rank 0 has rows
    local = torch.cat(mine) if mine else torch.empty((0, *width), device=x.device)
    logits = distributed.gather_rows(local, [share.numel() for share in shares], world)
    return [(logits[start:start + batch_size], rows[start:start + batch_size].to(x.device))
            for start in range(0, rows.numel(), batch_size)]


@torch.no_grad()
def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    task: Task,
    batch_size: int = 256,
    index: Sequence[int] | np.ndarray | torch.Tensor | None = None,
    autocast: Autocast = None,
    channels_last: bool = False,
) -> dict[str, float]:
    rows = _rows(x.shape[0], index)
    total = 0.0
    preds, targets = [], []
    for logits, r in _all_outputs(model, x, rows, batch_size, autocast, channels_last):
        yb = y.index_select(0, r.to(y.device))
        total += task.loss(logits, task.encode(yb)).item() * yb.shape[0]
        preds.append(task.decode(logits.detach().float()).cpu())  # bf16 logits under autocast
        targets.append(yb.cpu())
    if not preds:
        nan = float("nan")
        return {"loss": nan, "metric": nan, **{name: nan for name in task.metric_names}}
    metrics = task.metrics(torch.cat(preds), torch.cat(targets))
    return {"loss": total / rows.numel(), "metric": metrics[task.metric_name], **metrics}


@torch.no_grad()
def predict(
    model: nn.Module,
    x: torch.Tensor,
    task: Task,
    batch_size: int = 256,
    index: Sequence[int] | np.ndarray | torch.Tensor | None = None,
    autocast: Autocast = None,
    channels_last: bool = False,
) -> torch.Tensor:
    rows = _rows(x.shape[0], index)
    outputs = _all_outputs(model, x, rows, batch_size, autocast, channels_last)
    preds = [task.decode(logits).cpu() for logits, _ in outputs]
    if not preds:
        return torch.empty(0)
    return torch.cat(preds)
