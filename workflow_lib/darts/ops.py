"""DARTS candidate operations (Liu, Simonyan, Yang, ICLR 2019).

Every convolutional primitive uses the ReLU-Conv-BN ordering of the paper.  Search
networks build their ops with ``affine=False`` batch norm, evaluation networks with
``affine=True``.

Ops whose first layer is a ReLU carry ``relu_first = True`` and offer
``forward_prerelu(xr)`` which takes an input that has *already* been passed through
ReLU.  The search cell uses this to compute one ReLU per node and share it between all
the ReLU-first ops of all the edges leaving that node (mathematically identical to
each op applying its own ReLU).

Depthwise convs are :class:`DepthwiseConv2d` (an ``nn.Conv2d`` with the same parameters)
whose CPU backward picks faster kernels than oneDNN's defaults in torch 2.14.1: the input
gradient of a dilated one runs as a forward conv (5-25x faster), and under bf16 autocast
the weight gradient of a 5x5 or dilated one runs in fp32 (3.5-6.5x faster than oneDNN's
bf16 kernel); same gradients.
"""
from __future__ import annotations

from typing import Callable, Dict

import torch
import torch.nn as nn
import torch.nn.functional as F

from .primitives import PRIMITIVES  # noqa: F401 - re-exported: OPS follows this order


def make_stem(in_channels: int, C_out: int, stride: int = 1) -> nn.Sequential:
    """The network stem of both the search and the evaluation network: Conv 3x3 (no bias) -> BN.

    ``stride`` > 1 shrinks the feature maps before the first cell (a cheaper proxy search, in
    the spirit of the DARTS ImageNet network's strided stem); 1 is the CIFAR design.  The
    parameter count does not depend on it."""
    if stride < 1:
        raise ValueError(f"stem stride must be >= 1, got {stride}")
    return nn.Sequential(
        nn.Conv2d(in_channels, C_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(C_out),
    )


def _depthwise_input_grad(g: torch.Tensor, w: torch.Tensor, x_shape, stride: int, padding: int,
                          dilation: int) -> torch.Tensor:
    """dL/dx of a depthwise conv as a *forward* depthwise conv of the output gradient with
    the flipped kernel (the transposed convolution written as a correlation): for stride s
    the gradient is first spread onto the input grid (zeros between, "zero insertion")."""
    C, k = w.shape[0], w.shape[-1]
    H, W = x_shape[-2:]
    fmt = (torch.channels_last if g.is_contiguous(memory_format=torch.channels_last)
           and not g.is_contiguous() else torch.contiguous_format)
    if stride != 1:
        n, _, ho, wo = g.shape
        up = torch.empty((n, C, (ho - 1) * stride + 1, (wo - 1) * stride + 1), dtype=g.dtype,
                         device=g.device, memory_format=fmt).zero_()
        up[:, :, ::stride, ::stride] = g
        g = up
    q = dilation * (k - 1) - padding  # the transposed conv's padding on the low side
    # the high side also covers the rows/columns the strided forward never reached
    extra_h = H + 2 * padding - dilation * (k - 1) - g.shape[2]
    extra_w = W + 2 * padding - dilation * (k - 1) - g.shape[3]
    g = F.pad(g, (q, q + extra_w, q, q + extra_h))
    return F.conv2d(g, w.flip(-1, -2), None, 1, 0, dilation, C)


def _will_need(ctx, index: int) -> bool:
    """Whether the current backward pass needs the gradient of input ``index``.

    ``ctx.needs_input_grad`` only says the input requires grad; e.g. the architect's
    alpha-only passes never use the conv weights' gradient.  The engine knows (the same
    query torch.utils.checkpoint makes); if that internal API is missing, assume needed."""
    if not ctx.needs_input_grad[index]:
        return False
    try:
        node = ctx.next_functions[index][0]
        return node is None or bool(torch._C._will_engine_execute_node(node))
    except (AttributeError, RuntimeError):
        return True


class _DilatedDepthwiseFn(torch.autograd.Function):
    """Depthwise conv with the CPU backward kernels of :class:`DepthwiseConv2d` (module docstring).

    Input gradient: for a dilated conv :func:`_depthwise_input_grad` (with torch 2.14.1 on CPU,
    oneDNN's backward-data of *dilated* depthwise convs is 5-25x slower than the equivalent forward
    conv: 5x5, dilation 2, on 32x16x16x40: 11.3 ms vs 0.44 ms in NCHW; 10 ms vs 0.6 ms in
    channels_last at stride 2), else oneDNN's.  Weight gradient: oneDNN's, in fp32 when the pass is
    bf16/fp16 and the kernel is 5x5 or dilated (oneDNN's bf16 depthwise backward-weights is 3.5-6.5x
    slower than upcasting and running its fp32 kernel: 5x5 on 32x8x32x80 channels_last, 2 threads,
    10.2 vs 2.8 ms).  Gradients the pass does not need are skipped.

    Under CPU autocast the forward conv runs in bf16 (autocast casts x and w) while the saved w is
    the fp32 parameter and the backward runs outside autocast: the backward computes in the output
    gradient's dtype, as the forward did, and returns each gradient in its input's dtype (the
    gradient of autocast's cast is a cast back).  Built from differentiable ops, so double backward
    works."""

    @staticmethod
    def forward(ctx, x, w, stride: int, padding: int, dilation: int):
        ctx.save_for_backward(x, w)
        ctx.conf = (stride, padding, dilation)
        return F.conv2d(x, w, None, stride, padding, dilation, w.shape[0])

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        s, p, d = ctx.conf
        need_x, need_w = _will_need(ctx, 0), _will_need(ctx, 1)
        wc = w.to(g.dtype)
        gx = gw = None
        low = g.element_size() < 4
        fp32_weight_grad = low and (d > 1 or w.shape[-1] >= 5)
        if need_x and d > 1:
            gx = _depthwise_input_grad(g, wc, x.shape, s, p, d).to(x.dtype)
        native_x = need_x and gx is None
        native_w = need_w and not fp32_weight_grad
        if native_x or native_w:
            grads = torch.ops.aten.convolution_backward(
                g, x.to(g.dtype), wc, None, [s, s], [p, p], [d, d], False, [0, 0], w.shape[0],
                [native_x, native_w, False])
            if native_x:
                gx = grads[0].to(x.dtype)
            if native_w:
                gw = grads[1].to(w.dtype)
        if need_w and fp32_weight_grad:
            gw = torch.ops.aten.convolution_backward(
                g.float(), x.float(), w.float(), None, [s, s], [p, p], [d, d], False, [0, 0], w.shape[0],
                [False, True, False])[1].to(w.dtype)
        return gx, gw, None, None, None


def dilated_depthwise_conv(x: torch.Tensor, w: torch.Tensor, stride: int, padding: int,
                           dilation: int) -> torch.Tensor:
    """``F.conv2d(x, w, stride=stride, padding=padding, dilation=dilation, groups=C)`` with
    the faster backward kernels of :class:`_DilatedDepthwiseFn`."""
    return _DilatedDepthwiseFn.apply(x, w, stride, padding, dilation)


class DepthwiseConv2d(nn.Conv2d):
    """``nn.Conv2d(C, C, k, groups=C, bias=False)`` (same parameters and state_dict) whose
    dilated or 5x5 CPU backward uses :func:`dilated_depthwise_conv`; elsewhere the plain conv."""

    def __init__(self, C: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 dilation: int = 1):
        super().__init__(C, C, kernel_size, stride=stride, padding=padding, dilation=dilation,
                         groups=C, bias=False)

    def forward(self, x):
        if self._subsampled(x):
            return self._subsampled_forward(x)
        # under torch.compile (search.kernel: compiled) the stock conv: inductor treats it as an
        # extern kernel either way, and the autograd.Function would break the graph
        if ((self.dilation[0] > 1 or self.kernel_size[0] >= 5) and x.device.type == "cpu"
                and torch.is_grad_enabled() and not torch.compiler.is_compiling()):
            return dilated_depthwise_conv(x, self.weight, self.stride[0], self.padding[0],
                                          self.dilation[0])
        return super().forward(x)

    def _subsampled(self, x: torch.Tensor) -> bool:
        """Whether this conv reads only every ``stride``-th row and column of its input: dilation
        and padding multiples of a stride > 1 (the reduction cells' dil convs: stride 2, dilation
        2), on the CPU, where that form is 5-20x faster in the backward."""
        (s, _), (d, _), (p, _) = self.stride, self.dilation, self.padding
        return (s > 1 and d % s == 0 and p % s == 0 and x.device.type == "cpu"
                and self.stride[0] == self.stride[1] and self.dilation[0] == self.dilation[1]
                and self.padding[0] == self.padding[1] and not torch.compiler.is_compiling())

    def _subsampled_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The same conv on the input's every ``s``-th row and column, stride 1, dilation d/s and
        padding p/s: output pixel h reads padded rows s*h + d*i = s*(h + (d/s)*i), i.e. rows of
        the subsampled padded input, whose padding is p/s rows (p a multiple of s).  Identical
        outputs and gradients (up to the summation order); the input gradient is zero off the grid,
        as in the strided conv.  Non-dilated afterwards, so oneDNN's fast kernels apply."""
        s, d, p = self.stride[0], self.dilation[0], self.padding[0]
        sub = x[:, :, ::s, ::s]
        if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            sub = sub.contiguous(memory_format=torch.channels_last)
        return F.conv2d(sub, self.weight, None, 1, p // s, d // s, self.groups)


class ReLUConvBN(nn.Module):
    """ReLU -> Conv(k, stride, padding, no bias) -> BatchNorm."""

    relu_first = True

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int,
                 affine: bool = True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x):
        return self.op(x)

    def forward_prerelu(self, xr):
        return self.op[2](self.op[1](xr))


class DilConv(nn.Module):
    """ReLU -> depthwise (dilated) conv -> pointwise 1x1 conv -> BatchNorm."""

    relu_first = True

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int,
                 dilation: int, affine: bool = True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            DepthwiseConv2d(C_in, kernel_size, stride=stride, padding=padding, dilation=dilation),
            nn.Conv2d(C_in, C_out, kernel_size=1, padding=0, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x):
        return self.op(x)

    def forward_prerelu(self, xr):
        op = self.op
        return op[3](op[2](op[1](xr)))

    def forward_prenorm(self, xr):
        """(input of the closing batch norm, that batch norm) for ``xr`` = relu(x)."""
        op = self.op
        return op[2](op[1](xr)), op[3]


class SepConv(nn.Module):
    """Separable conv applied twice: (ReLU, depthwise, pointwise, BN) x 2; stride on the first."""

    relu_first = True

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int,
                 affine: bool = True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            DepthwiseConv2d(C_in, kernel_size, stride=stride, padding=padding),
            nn.Conv2d(C_in, C_in, kernel_size=1, padding=0, bias=False),
            nn.BatchNorm2d(C_in, affine=affine),
            # in-place is safe here: BatchNorm's backward needs its input, not its output
            nn.ReLU(inplace=True),
            DepthwiseConv2d(C_in, kernel_size, stride=1, padding=padding),
            nn.Conv2d(C_in, C_out, kernel_size=1, padding=0, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x):
        return self.op(x)

    def forward_prerelu(self, xr):
        out = xr
        for layer in list(self.op)[1:]:
            out = layer(out)
        return out

    def forward_prenorm(self, xr):
        """(input of the closing batch norm, that batch norm) for ``xr`` = relu(x)."""
        out = xr
        for layer in list(self.op)[1:-1]:
            out = layer(out)
        return out, self.op[-1]


class Identity(nn.Module):
    relu_first = False

    def forward(self, x):
        return x


class Zero(nn.Module):
    """The ``none`` op: multiplies by zero (strided in reduction edges)."""

    relu_first = False

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """ReLU -> two 1x1 stride-2 convs on offset grids, concatenated -> BatchNorm.

    Halves the spatial size.  For odd sizes the shifted branch is padded by one
    row/column at the bottom/right so both branches have ceil(H/2) x ceil(W/2) (the
    original code only handles even sizes; for even sizes this is identical).
    """

    relu_first = True

    def __init__(self, C_in: int, C_out: int, affine: bool = True):
        super().__init__()
        if C_out % 2 != 0:
            raise ValueError(f"FactorizedReduce needs an even C_out, got {C_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward(self, x):
        return self.forward_prerelu(self.relu(x))

    def forward_prerelu(self, xr):
        out, bn = self.forward_prenorm(xr)
        return bn(out)

    def forward_prenorm(self, xr):
        """(input of the closing batch norm, that batch norm) for ``xr`` = relu(x)."""
        shifted = xr[:, :, 1:, 1:]
        h, w = xr.shape[-2:]
        if h % 2 == 1 or w % 2 == 1:
            shifted = F.pad(shifted, (0, w % 2, 0, h % 2))
        return torch.cat([self.conv_1(xr), self.conv_2(shifted)], dim=1), self.bn


def _pool(kind: str, stride: int) -> nn.Module:
    if kind == "max":
        pool = nn.MaxPool2d(3, stride=stride, padding=1)
    else:
        pool = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    pool.relu_first = False
    return pool


OpBuilder = Callable[[int, int, bool], nn.Module]

OPS: Dict[str, OpBuilder] = {
    "none": lambda C, stride, affine: Zero(stride),
    "max_pool_3x3": lambda C, stride, affine: _pool("max", stride),
    "avg_pool_3x3": lambda C, stride, affine: _pool("avg", stride),
    "skip_connect": lambda C, stride, affine: (
        Identity() if stride == 1 else FactorizedReduce(C, C, affine=affine)),
    "sep_conv_3x3": lambda C, stride, affine: SepConv(C, C, 3, stride, 1, affine=affine),
    "sep_conv_5x5": lambda C, stride, affine: SepConv(C, C, 5, stride, 2, affine=affine),
    "dil_conv_3x3": lambda C, stride, affine: DilConv(C, C, 3, stride, 2, 2, affine=affine),
    "dil_conv_5x5": lambda C, stride, affine: DilConv(C, C, 5, stride, 4, 2, affine=affine),
}

assert tuple(OPS) == PRIMITIVES


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Drop the whole path per sample with probability ``drop_prob`` (scaled by 1/keep)."""
    if drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = torch.empty((x.size(0), 1, 1, 1), dtype=x.dtype, device=x.device).bernoulli_(keep)
    return x / keep * mask
