"""Kernels of the mixed op's weighted sum ``sum_k w_k * y_k`` (DARTS, Liu et al., ICLR 2019, Eq. 2).

``search.kernel`` picks one; the algorithm is the same, the rounding differs by an ulp:

* ``eager``: ``w_k * y_k`` and a running ``out + term`` (the reference): per op a product and a
  sum are written and read back.
* ``fused``: :class:`WeightedSum`, one output buffer accumulated in place (``addcmul_``: read
  ``out`` and ``y_k``, write ``out``), whose backward gives ``grad y_k = w_k * g`` and
  ``grad w_k = <g, y_k>`` as a dot product over the tensors' storage (no product temporary), and
  skips what the pass does not need (the weight step never wants ``grad w``).  Ops whose weight is
  exactly zero are not computed (:func:`live_ops`).
* ``compiled``: the mixed op's forward through ``torch.compile`` (inductor), compiled once and
  reused by every edge ("regional compilation": the whole search network does not finish compiling
  in 15 minutes on 2 cores); recompiled per stride and pass kind, dynamic shapes after the first.  Inductor fuses the
  batch-norm normalisation, the weighting and the sum, and may recompute batch-norm outputs in the
  backward instead of saving them.  The compile cost counts in a run (bench/search_step.py).
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch

KERNELS = ("eager", "fused", "compiled")


def _storage_vector(t: torch.Tensor) -> Optional[torch.Tensor]:
    """A 1-D view of a dense NCHW or NHWC tensor's elements in memory order (None otherwise)."""
    if t.is_contiguous():
        return t.view(-1)
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last):
        return t.permute(0, 2, 3, 1).view(-1)
    return None


def inner(g: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """<g, y> (sum of the elementwise product), a 0-dim tensor: fp32 and fp64 tensors dense in the same
    layout by ``torch.dot`` over their storage (no product temporary); bf16/fp16 as the eager
    product's backward does it, ``(g * y).sum()`` (the sum accumulates in fp32 and rounds once; torch
    2.14.1's bf16 dot is ~150x slower on the CPU, and an fp32 result dtype makes the sum 2x slower)."""
    if g.dtype in (torch.float16, torch.bfloat16) or y.dtype != g.dtype:
        return (g * y).sum()
    a, b = _storage_vector(g), _storage_vector(y)
    if a is None or b is None or g.stride() != y.stride():
        return (g * y).sum()
    return torch.dot(a, b)


def _will_need(ctx, index: int) -> bool:
    from .ops import _will_need as will_need
    return will_need(ctx, index)


class WeightedSum(torch.autograd.Function):
    """``sum_k w[k] * ys[k]`` into one buffer; ``w``: (K,) weights of the K tensors ``ys``.

    The backward is built from differentiable ops, so double backward works."""

    @staticmethod
    def forward(ctx, w: torch.Tensor, *ys: torch.Tensor) -> torch.Tensor:
        out = torch.mul(ys[0], w[0].to(ys[0].dtype))
        for k in range(1, len(ys)):
            out.addcmul_(ys[k], w[k].to(out.dtype))
        # the ys are needed only for grad w (not kept when the weights are constants, e.g. the weight step)
        ctx.save_for_backward(w, *(ys if ctx.needs_input_grad[0] else ()))
        return out

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        w, *ys = ctx.saved_tensors
        gw = None
        if ys and _will_need(ctx, 0):
            gw = torch.stack([inner(g, y).to(w.dtype) for y in ys])
        gys = [g * w[k].to(g.dtype) if ctx.needs_input_grad[k + 1] else None
               for k in range(len(ctx.needs_input_grad) - 1)]
        return (gw, *gys)


def weighted_sum(weights: torch.Tensor, ys: Sequence[torch.Tensor], index: Sequence[int]) -> torch.Tensor:
    """``sum_j weights[index[j]] * ys[j]`` with :class:`WeightedSum`."""
    w = weights[list(index)] if len(index) != weights.shape[0] else weights
    return WeightedSum.apply(w, *ys)


def live_ops(weights: torch.Tensor, skip: Sequence[int] = ()) -> List[List[int]]:
    """Per row of ``weights`` (edges, ops): the op indices whose weight is not exactly zero, without
    ``skip`` (``none``).  One host read per call (call it once per forward and cell type).

    Dropping an op of weight exactly 0 is exact for softmax weights: its term is 0, and the gradient
    through softmax, dw_k/dalpha_j = w_k (delta_kj - w_j), vanishes with w_k, so <g, y_k> is never used."""
    nonzero = (weights.detach() != 0).tolist()
    every = [k for k in range(weights.shape[-1]) if k not in skip]
    # a row left empty keeps every op (their terms are exactly 0): an edge always has an output
    return [[k for k in every if row[k]] or every for row in nonzero]


def _mixed_sum(op, x: torch.Tensor, xr: torch.Tensor, weights: torch.Tensor, index: tuple) -> torch.Tensor:
    """The eager mixed op's sum over the ops ``index`` (what ``compiled`` hands to torch.compile)."""
    out = None
    for k in index:
        y = op._ops[k].forward_prerelu(xr) if op._relu_first[k] else op._ops[k](x)
        term = weights[k] * y
        out = term if out is None else out + term
    return out


_COMPILED = {}
RECOMPILE_LIMIT = 64  # distinct (stride, shape, layout, dtype, pass) cases of one search network: about 10-20


def compiled_mixed_sum(op, x: torch.Tensor, xr: torch.Tensor, weights: torch.Tensor, index: tuple) -> torch.Tensor:
    """:func:`_mixed_sum` through torch.compile (inductor) in training passes; eager without grad
    (evaluation).  Compiled graphs are shared by all mixed ops (the module's parameters are graph
    inputs); dynamo recompiles per stride and whether the weights require grad (architecture step
    or weight step), and after a first size change compiles a dynamic-shape graph."""
    if not torch.is_grad_enabled():
        return _mixed_sum(op, x, xr, weights, index)
    fn = _COMPILED.get("mixed_sum")
    if fn is None:
        import torch._dynamo as dynamo
        dynamo.config.recompile_limit = max(dynamo.config.recompile_limit, RECOMPILE_LIMIT)
        fn = _COMPILED["mixed_sum"] = torch.compile(_mixed_sum)
    return fn(op, x, xr, weights, index)
