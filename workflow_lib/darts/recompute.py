"""Recomputation per search cell (``search.recompute``): keep only each cell's inputs in the forward
pass and recompute the cell's activations in the backward (activation checkpointing, Chen et al. 2016,
"Training Deep Nets with Sublinear Memory Cost"), with ``torch.utils.checkpoint`` (non-reentrant).

The recomputed forward must be the forward that ran, and must not change state a second time:

* Batch norm in training mode normalises with the batch's statistics (identical in the recomputation)
  and updates its running statistics: the recomputation restores running mean, variance and
  ``num_batches_tracked`` to their values before it, so they are updated once per forward, as without
  recomputation (:func:`_frozen_batch_norm_stats`).
* RNG state is restored for the recomputation (``preserve_rng_state``; the search cells draw no
  random numbers, but a drop-path would).
* The architect writes weights in place between passes (the unrolled w', the Hessian-vector product's
  w +- eps v); every such write happens after the backward pass of the forward that read the weights,
  so a recomputation always sees the weights its forward saw (torch.utils.checkpoint would raise if
  not: the saved tensors' version counters are checked).
"""
from __future__ import annotations

import contextlib
from typing import Iterator, List

import torch
import torch.nn as nn
from torch.utils.checkpoint import checkpoint


@contextlib.contextmanager
def _frozen_batch_norm_stats(module: nn.Module) -> Iterator[None]:
    """Batch norms of ``module`` keep the running statistics they had when the block was entered.

    (The recomputation must run the same ops as the forward, so that torch.utils.checkpoint finds the
    same saved tensors; so the running statistics are updated and then restored, bitwise.)"""
    norms: List[nn.modules.batchnorm._BatchNorm] = [
        m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    saved = [[b.clone() for b in (m.running_mean, m.running_var, m.num_batches_tracked) if b is not None]
             for m in norms]
    try:
        yield
    finally:
        with torch.no_grad():
            for m, values in zip(norms, saved):
                buffers = [b for b in (m.running_mean, m.running_var, m.num_batches_tracked) if b is not None]
                for b, v in zip(buffers, values):
                    b.copy_(v)


def checkpoint_cell(cell: nn.Module, *args, **kwargs) -> torch.Tensor:
    """``cell(*args, **kwargs)`` whose activations are recomputed in the backward pass."""
    if not cell.training:  # eval-mode batch norm updates nothing; no special recomputation context
        return checkpoint(cell, *args, use_reentrant=False, preserve_rng_state=True, **kwargs)
    return checkpoint(cell, *args, use_reentrant=False, preserve_rng_state=True,
                      context_fn=lambda: (contextlib.nullcontext(), _frozen_batch_norm_stats(cell)), **kwargs)
