"""The DARTS search network (supernet) that owns its architecture parameters."""
from __future__ import annotations

from typing import Dict, Iterator, List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .ops import PRIMITIVES, make_stem
from .search_cells import SearchCell

N_OPS = len(PRIMITIVES)


def n_edges(steps: int = 4) -> int:
    return sum(2 + i for i in range(steps))  # 14 for 4 nodes


class SearchNetwork(nn.Module):
    """Stem (conv 3x3, ``stem_multiplier*C`` channels, BN) -> ``layers`` search cells
    (reduction cells at layers//3 and 2*layers//3, channels doubled there) -> global
    average pooling -> linear (``out_dim`` outputs: classes, or 1 for regression).

    ``alpha_normal`` and ``alpha_reduce`` (14 x 8, init 1e-3*randn) are ``nn.Parameter``s
    so that ``state_dict`` carries them; use :meth:`weights` / :meth:`alphas` (or
    :meth:`named_weights`) to keep the two optimisers apart.

    ``forward(x)`` returns a tensor of shape (N, out_dim).
    """

    ALPHA_NAMES = ("alpha_normal", "alpha_reduce")

    def __init__(self, in_channels: int, out_dim: int, C: int = 16, layers: int = 8,
                 steps: int = 4, multiplier: int = 4, stem_multiplier: int = 3):
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

        C_curr = stem_multiplier * C
        self.stem = make_stem(in_channels, C_curr)
        C_prev_prev, C_prev, C_curr = C_curr, C_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        self.reduction_layers = sorted({layers // 3, 2 * layers // 3})
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                C_curr *= 2
            cell = SearchCell(steps, multiplier, C_prev_prev, C_prev, C_curr, reduction, reduction_prev)
            reduction_prev = reduction
            self.cells.append(cell)
            C_prev_prev, C_prev = C_prev, multiplier * C_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, out_dim)

        k = n_edges(steps)
        self.alpha_normal = nn.Parameter(1e-3 * torch.randn(k, N_OPS))
        self.alpha_reduce = nn.Parameter(1e-3 * torch.randn(k, N_OPS))

    # -- parameter groups -------------------------------------------------------------------
    def alphas(self) -> List[nn.Parameter]:
        return [self.alpha_normal, self.alpha_reduce]

    def named_weights(self) -> Iterator[Tuple[str, nn.Parameter]]:
        for name, p in self.named_parameters():
            if name not in self.ALPHA_NAMES:
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
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w_normal = F.softmax(self.alpha_normal, dim=-1)
        w_reduce = F.softmax(self.alpha_reduce, dim=-1)
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            w = w_reduce if cell.reduction else w_normal
            s0, s1 = s1, cell(s0, s1, w)
        out = self.global_pooling(s1).flatten(1)
        return self.classifier(out)


def build_search_network(in_channels: int, out_dim: int, C: int = 16, layers: int = 8) -> SearchNetwork:
    """The paper's search supernet (4 nodes, multiplier 4, stem multiplier 3)."""
    return SearchNetwork(in_channels, out_dim, C=C, layers=layers)
