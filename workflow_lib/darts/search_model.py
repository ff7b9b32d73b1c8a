"""The DARTS search network (supernet) that owns its architecture parameters."""
from __future__ import annotations

from typing import Dict, Iterator, List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .mixed_kernels import KERNELS, live_ops
from .ops import PRIMITIVES, make_stem
from .recompute import checkpoint_cell
from .search_cells import NONE_INDEX, SearchCell

N_OPS = len(PRIMITIVES)


class _GlobalAvgPool(torch.autograd.Function):
    """``adaptive_avg_pool2d(x, 1).flatten(1)`` whose input gradient has x's memory format.

    (torch 2.14.1's backward returns NCHW even for a channels_last x; that gradient then flows
    through the last cell in NCHW and meets channels_last tensors in every add and mul of the
    backward pass, which then take slow strided paths: 2x in fp32, 4-7x in bf16.)  Same values."""

    @staticmethod
    def forward(ctx, x):
        ctx.shape, ctx.dtype = x.shape, x.dtype
        ctx.channels_last = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(
            memory_format=torch.channels_last)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)

    @staticmethod
    def backward(ctx, g):
        n, c, h, w = ctx.shape
        fmt = torch.channels_last if ctx.channels_last else torch.contiguous_format
        out = torch.empty(ctx.shape, dtype=g.dtype, device=g.device, memory_format=fmt)
        return out.copy_((g / (h * w)).reshape(n, c, 1, 1).expand(ctx.shape))


def n_edges(steps: int = 4) -> int:
    return sum(2 + i for i in range(steps))  # 14 for 4 nodes


class SearchNetwork(nn.Module):
    """Stem (conv 3x3, ``stem_multiplier*C`` channels, BN) -> ``layers`` search cells
    (reduction cells at layers//3 and 2*layers//3, channels doubled there) -> global
    average pooling -> linear (``out_dim`` outputs: classes, or 1 for regression).

    ``alpha_normal`` and ``alpha_reduce`` (14 x 8, init 1e-3*randn) are ``nn.Parameter``s
    so that ``state_dict`` carries them; use :meth:`weights` / :meth:`alphas` (or
    :meth:`named_weights`) to keep the two optimisers apart.

    ``stem_stride`` (default 1, the paper's CIFAR design) strides the stem convolution, so a
    proxy search can run on smaller feature maps; parameters do not change.

    ``kernel`` (``search.kernel``: eager | fused | compiled, :mod:`.mixed_kernels`) and ``recompute``
    (``search.recompute``: recompute each cell's activations in the backward instead of keeping them,
    :mod:`.recompute`) change speed and memory, not the algorithm; :meth:`set_kernel` switches later.

    ``forward(x)`` returns a tensor of shape (N, out_dim).
    """

    ALPHA_NAMES = ("alpha_normal", "alpha_reduce")

    def __init__(self, in_channels: int, out_dim: int, C: int = 16, layers: int = 8,
                 steps: int = 4, multiplier: int = 4, stem_multiplier: int = 3,
                 stem_stride: int = 1, kernel: str = "eager", recompute: bool = False):
        super().__init__()
        if layers < 1:
            raise ValueError(f"layers must be >= 1, got {layers}")
        self.in_channels = in_channels
        self.out_dim = out_dim
        self.C = C
        self.layers = layers
        self.steps = steps
        self.multiplier = multiplier
        self.stem_multiplier = stem_multiplier
        self.stem_stride = stem_stride

        C_curr = stem_multiplier * C
        self.stem = make_stem(in_channels, C_curr, stride=stem_stride)
        C_prev_prev, C_prev, C_curr = C_curr, C_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        self.reduction_layers = sorted({layers // 3, 2 * layers // 3})
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                C_curr *= 2
            cell = self._make_cell(steps, multiplier, C_prev_prev, C_prev, C_curr, reduction, reduction_prev)
            reduction_prev = reduction
            self.cells.append(cell)
            C_prev_prev, C_prev = C_prev, multiplier * C_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, out_dim)

        k = n_edges(steps)
        self.alpha_normal = nn.Parameter(1e-3 * torch.randn(k, N_OPS))
        self.alpha_reduce = nn.Parameter(1e-3 * torch.randn(k, N_OPS))
        self.recompute = bool(recompute)
        self.set_kernel(kernel)

    def set_kernel(self, kernel: str) -> None:
        """Switch the mixed ops' weighted-sum kernel (eager | fused | compiled)."""
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
        self.kernel = kernel
        for cell in self.cells:
            cell.set_kernel(kernel)

    def _make_cell(self, steps, multiplier, C_prev_prev, C_prev, C, reduction, reduction_prev):
        """One search cell (a hook: PC-DARTS builds its cells with partial mixed ops)."""
        return SearchCell(steps, multiplier, C_prev_prev, C_prev, C, reduction, reduction_prev)

    # -- parameter groups -------------------------------------------------------------------
    def alphas(self) -> List[nn.Parameter]:
        """All architecture parameters (what the Architect's Adam optimises)."""
        return [self.alpha_normal, self.alpha_reduce]

    def op_alphas(self) -> List[nn.Parameter]:
        """The (edges, ops) op-choice parameters only (what op regularisers act on)."""
        return [self.alpha_normal, self.alpha_reduce]

    def named_weights(self) -> Iterator[Tuple[str, nn.Parameter]]:
        arch = {id(p) for p in self.alphas()}
        for name, p in self.named_parameters():
            if id(p) not in arch:
                yield name, p

    def weights(self) -> Iterator[nn.Parameter]:
        for _, p in self.named_weights():
            yield p

    def softmax_alphas(self) -> Dict[str, torch.Tensor]:
        return {"normal": F.softmax(self.alpha_normal, dim=-1),
                "reduce": F.softmax(self.alpha_reduce, dim=-1)}

    def genotype(self):
        from .derive import derive_genotype
        return derive_genotype(self.alpha_normal, self.alpha_reduce, steps=self.steps,
                               multiplier=self.multiplier)

    # -- forward ----------------------------------------------------------------------------
    def cell_inputs(self) -> Dict[str, tuple]:
        """Per cell type, the architecture arguments each cell's forward takes after (s0, s1)."""
        w = self.softmax_alphas()
        return {"normal": (w["normal"],), "reduce": (w["reduce"],)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        arch = self.cell_inputs()
        # fused/compiled: which ops have nonzero weight, read once per forward and cell type
        live = ({name: live_ops(args[0], skip=(NONE_INDEX,)) for name, args in arch.items()}
                if self.kernel != "eager" else {})
        recompute = self.recompute and torch.is_grad_enabled()
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            name = "reduce" if cell.reduction else "normal"
            if recompute:
                out = checkpoint_cell(cell, s0, s1, *arch[name], live=live.get(name))
            else:
                out = cell(s0, s1, *arch[name], live=live.get(name))
            s0, s1 = s1, out
        out = _GlobalAvgPool.apply(s1)  # = self.global_pooling(s1).flatten(1)
        return self.classifier(out)


def build_search_network(in_channels: int, out_dim: int, C: int = 16, layers: int = 8,
                         stem_stride: int = 1, kernel: str = "eager", recompute: bool = False) -> SearchNetwork:
    """The paper's search supernet (4 nodes, multiplier 4, stem multiplier 3)."""
    return SearchNetwork(in_channels, out_dim, C=C, layers=layers, stem_stride=stem_stride, kernel=kernel,
                         recompute=recompute)
