"""Kernels of the mixed op's weighted sum ``sum_k w_k * y_k`` (DARTS, Liu et al., ICLR 2019, Eq. 2).

``search.kernel`` picks one; the algorithm is the same, the rounding differs by an ulp:

* ``eager``: ``w_k * y_k`` and a running ``out + term`` (the reference): per op a product and a
  sum are written and read back.
* ``fused``: :class:`WeightedSum`, one output buffer accumulated in place (``addcmul_``: read
  ``out`` and ``y_k``, write ``out``), whose backward gives ``grad y_k = w_k * g`` and
  ``grad w_k = <g, y_k>`` as a dot product over the tensors' storage (no product temporary), and
  skips what the pass does not need (the weight step never wants ``grad w``).  Ops whose weight is
  exactly zero are not computed (:func:`live_ops`).  In a DARTS cell (fp32/fp64, training mode) each
  op's closing batch norm is folded into the sum (:class:`NormalizedWeightedSum`): ``BN(z_k)`` is never
  written, kept or read back, and one batch-norm backward per op gives both ``dz_k`` and ``grad w_k``
  (config C: 21% less peak memory, bench/search_step.py).
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
        gys = [g * w[k].to(g.dtype) if _will_need(ctx, k + 1) else None
               for k in range(len(ctx.needs_input_grad) - 1)]
        return (gw, *gys)


def _narrow_channels_last(t: torch.Tensor) -> bool:
    """A channels_last CPU tensor with fewer channels than torch 2.14.1's fast NHWC batch-norm backward
    needs (engine.device's narrow batch-norm guard: that backward runs on NCHW copies)."""
    from workflow_lib.engine.device import NARROW_BATCH_NORM_CHANNELS
    return (t.device.type == "cpu" and t.dim() == 4 and t.shape[1] < NARROW_BATCH_NORM_CHANNELS
            and _layout(t) is torch.channels_last)


def _layout(t: torch.Tensor) -> torch.memory_format:
    """channels_last for a dense NHWC 4-D tensor, else the default format."""
    return (torch.channels_last if t.dim() == 4 and not t.is_contiguous()
            and t.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format)


def _batch_statistics(z: torch.Tensor, bn: torch.nn.modules.batchnorm._BatchNorm):
    """(mean, invstd) of ``z`` per channel over (N, H, W), and ``bn``'s running statistics updated once
    with them, as ``nn.BatchNorm2d`` does in training mode (momentum, or the cumulative average when
    ``momentum`` is None; the running variance is the unbiased one)."""
    momentum = 0.0 if bn.momentum is None else bn.momentum
    running = (bn.running_mean, bn.running_var) if bn.track_running_stats else (None, None)
    if bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        if bn.momentum is None:
            momentum = 1.0 / float(bn.num_batches_tracked)
    mean, var = torch.batch_norm_update_stats(z, *running, momentum)
    return mean, torch.rsqrt(var + bn.eps)


class NormalizedWeightedSum(torch.autograd.Function):
    """``sum_k w[k] * BN_k(z_k)`` (or ``w[k] * z_k`` where ``norms[k]`` is None) without the normalised
    tensors: each op's closing batch norm (affine=False, training mode) is folded into the sum.

    A DARTS op ends in a batch norm without affine parameters (ReLU-conv-BN ops; pools followed by BN
    in the search network), so ``w_k * BN(z_k) = (w_k * invstd_k) * z_k - w_k * invstd_k * mean_k``
    per channel: the forward computes each ``z_k``'s batch statistics, then one buffer
    ``out = shift + sum_k scale_k * z_k``; ``BN(z_k)`` is never written nor kept.  Backward: with
    ``gamma = w_k`` (the same per channel), the affine batch-norm backward of ``g`` gives ``dz_k`` and
    ``dL/dgamma_c = sum g * xhat_k``, whose sum over channels is ``dL/dw_k`` (= ``<g, BN(z_k)>``, as the
    eager sum's).  One native kernel per op instead of the product ``w_k * g``, the batch-norm
    backward of it and the dot product ``<g, y_k>``.  Built from differentiable ops (the
    batch-norm backward has a double backward), so Hessian-vector products work."""

    @staticmethod
    def forward(ctx, w: torch.Tensor, *inputs) -> torch.Tensor:
        *zs, norms = inputs  # the norms last: argument k + 1 is z_k, as in ctx.next_functions
        stats = [None if bn is None else _batch_statistics(z, bn) for z, bn in zip(zs, norms)]
        shift, scales = None, []
        for k, (z, st) in enumerate(zip(zs, stats)):
            wk = w[k].to(z.dtype)
            if st is None:
                scales.append(wk)
                continue
            scale = wk * st[1]
            scales.append(scale.view(1, -1, 1, 1))
            shift = -scale * st[0] if shift is None else shift - scale * st[0]
        order = sorted(range(len(zs)), key=lambda k: stats[k] is None)  # a normalised term first
        first = order[0]
        out = (torch.addcmul(shift.view(1, -1, 1, 1), zs[first], scales[first]) if shift is not None
               else torch.mul(zs[first], scales[first]))
        for k in order[1:]:
            out.addcmul_(zs[k], scales[k])
        ctx.stats = stats
        ctx.eps = [None if bn is None else bn.eps for bn in norms]
        ctx.save_for_backward(w, *zs)
        return out

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        w, *zs = ctx.saved_tensors
        need_w = _will_need(ctx, 0)
        # a node's gradient is often a channel slice of the cell output's (torch.cat): dense it once, in
        # the terms' layout, for all its batch-norm backwards (on a strided one, torch 2.14.1's NHWC
        # kernel is 4x slower: 32x16x16x40, 1.33 against 0.36 ms)
        g = g.contiguous(memory_format=_layout(zs[0]))
        g_nchw = None
        gzs, gws = [], []
        for k, (z, st) in enumerate(zip(zs, ctx.stats)):
            # not only "requires grad": an alpha-only pass never uses the gradient of a cell's first edges
            # (nothing before them has alphas), so their batch-norm backward is not run
            need_z = _will_need(ctx, k + 1)
            if st is None:
                gzs.append(g * w[k].to(g.dtype) if need_z else None)
                gws.append(inner(g, z).to(w.dtype) if need_w else None)
                continue
            if not (need_z or need_w):
                gzs.append(None)
                gws.append(None)
                continue
            narrow = _narrow_channels_last(z)
            if narrow and g_nchw is None:
                g_nchw = g.contiguous()  # one copy per node, shared by its narrow terms
            gamma = w[k].to(z.dtype).expand(z.shape[1]).contiguous()
            gz, ggamma, _ = torch.ops.aten.native_batch_norm_backward(
                g_nchw if narrow else g, z.contiguous() if narrow else z, gamma, None, None, st[0], st[1], True,
                ctx.eps[k], [need_z, need_w, False])
            if narrow and gz is not None:
                gz = gz.contiguous(memory_format=torch.channels_last)
            gzs.append(gz)
            gws.append(ggamma.sum().to(w.dtype) if need_w else None)
        gw = torch.stack(gws) if need_w else None
        return (gw, *gzs, None)


def _selected(weights: torch.Tensor, index: Sequence[int]) -> torch.Tensor:
    """``weights[index]`` (no copy when ``index`` takes them all)."""
    return weights[list(index)] if len(index) != weights.shape[0] else weights


def normalized_weighted_sum(weights: torch.Tensor, terms: Sequence[tuple], index: Sequence[int]) -> torch.Tensor:
    """``sum_j weights[index[j]] * norm_j(z_j)`` for ``terms`` = [(z_j, norm_j or None)] with
    :class:`NormalizedWeightedSum`."""
    w = _selected(weights, index)
    return NormalizedWeightedSum.apply(w, *(z for z, _ in terms), tuple(bn for _, bn in terms))


def foldable_norm(bn) -> bool:
    """Whether an op's closing batch norm can be folded into :class:`NormalizedWeightedSum`: no affine
    parameters, training mode (batch statistics)."""
    return (isinstance(bn, torch.nn.modules.batchnorm._BatchNorm) and not bn.affine and bn.training)


def weighted_sum(weights: torch.Tensor, ys: Sequence[torch.Tensor], index: Sequence[int]) -> torch.Tensor:
    """``sum_j weights[index[j]] * ys[j]`` with :class:`WeightedSum`."""
    w = _selected(weights, index)
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
