"""DARTS candidate operations (Liu, Simonyan, Yang, ICLR 2019).

Every convolutional primitive uses the ReLU-Conv-BN ordering of the paper.  Search
networks build their ops with ``affine=False`` batch norm, evaluation networks with
``affine=True``.

Ops whose first layer is a ReLU carry ``relu_first = True`` and offer
``forward_prerelu(xr)`` which takes an input that has *already* been passed through
ReLU.  The search cell uses this to compute one ReLU per node and share it between all
the ReLU-first ops of all the edges leaving that node (mathematically identical to
each op applying its own ReLU).
"""
from __future__ import annotations

from typing import Callable, Dict

import torch
import torch.nn as nn
import torch.nn.functional as F

from .primitives import PRIMITIVES  # noqa: F401 - re-exported: OPS follows this order


def make_stem(in_channels: int, C_out: int) -> nn.Sequential:
    """The network stem of both the search and the evaluation network: Conv 3x3 (no bias) -> BN."""
    return nn.Sequential(
        nn.Conv2d(in_channels, C_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(C_out),
    )


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
            nn.Conv2d(C_in, C_in, kernel_size, stride=stride, padding=padding, dilation=dilation,
                      groups=C_in, bias=False),
            nn.Conv2d(C_in, C_out, kernel_size=1, padding=0, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x):
        return self.op(x)

    def forward_prerelu(self, xr):
        op = self.op
        return op[3](op[2](op[1](xr)))


class SepConv(nn.Module):
    """Separable conv applied twice: (ReLU, depthwise, pointwise, BN) x 2; stride on the first."""

    relu_first = True

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int,
                 affine: bool = True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, stride=stride, padding=padding, groups=C_in,
                      bias=False),
            nn.Conv2d(C_in, C_in, kernel_size=1, padding=0, bias=False),
            nn.BatchNorm2d(C_in, affine=affine),
            # in-place is safe here: BatchNorm's backward needs its input, not its output
            nn.ReLU(inplace=True),
            nn.Conv2d(C_in, C_in, kernel_size, stride=1, padding=padding, groups=C_in, bias=False),
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
        shifted = xr[:, :, 1:, 1:]
        h, w = xr.shape[-2:]
        if h % 2 == 1 or w % 2 == 1:
            shifted = F.pad(shifted, (0, w % 2, 0, h % 2))
        out = torch.cat([self.conv_1(xr), self.conv_2(shifted)], dim=1)
        return self.bn(out)


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
