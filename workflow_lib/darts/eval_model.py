"""Evaluation network built from a genotype (the paper's NetworkCIFAR design).

``forward(x)`` returns ``(logits, logits_aux)``: ``logits`` (N, out_dim); ``logits_aux``
(N, out_dim) from the auxiliary head in training mode when ``auxiliary=True``, else None.
Set ``model.drop_path_prob`` each epoch (paper: linearly 0 -> 0.2 over training).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .genotypes import Genotype
from .ops import OPS, FactorizedReduce, Identity, ReLUConvBN, drop_path, make_stem


class EvalCell(nn.Module):
    def __init__(self, genotype: Genotype, C_prev_prev: int, C_prev: int, C: int,
                 reduction: bool, reduction_prev: bool):
        super().__init__()
        if reduction_prev:
            self.preprocess0 = FactorizedReduce(C_prev_prev, C, affine=True)
        else:
            self.preprocess0 = ReLUConvBN(C_prev_prev, C, 1, 1, 0, affine=True)
        self.preprocess1 = ReLUConvBN(C_prev, C, 1, 1, 0, affine=True)
        pairs, concat = (genotype.reduce, genotype.reduce_concat) if reduction else \
            (genotype.normal, genotype.normal_concat)
        self.reduction = reduction
        self._steps = len(pairs) // 2
        self._concat = list(concat)
        self.multiplier = len(concat)
        self._indices = [idx for _, idx in pairs]
        self._ops = nn.ModuleList()
        for name, idx in pairs:
            stride = 2 if reduction and idx < 2 else 1
            self._ops.append(OPS[name](C, stride, True))
        self._is_identity = [isinstance(op, Identity) for op in self._ops]

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        apply_drop = self.training and drop_prob > 0.0
        for i in range(self._steps):
            hs = []
            for k in (2 * i, 2 * i + 1):
                h = self._ops[k](states[self._indices[k]])
                if apply_drop and not self._is_identity[k]:
                    h = drop_path(h, drop_prob)
                hs.append(h)
            states.append(hs[0] + hs[1])
        return torch.cat([states[i] for i in self._concat], dim=1)


class AuxiliaryHead(nn.Module):
    """AuxiliaryHeadCIFAR: ReLU, AvgPool(5, stride 3) (8x8 -> 2x2), 1x1 conv 128, BN, ReLU,
    2x2 conv 768, BN, ReLU, linear.  Where the fixed pooling would not give 2x2 (inputs
    whose feature map there is not 8..10 pixels per side, e.g. 32x80 or 8x8 images) the
    pooling is an adaptive average pool to 2x2 instead; parameters are identical."""

    def __init__(self, C: int, out_dim: int):
        super().__init__()
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False)
        self.features = nn.Sequential(
            nn.Conv2d(C, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        h, w = x.shape[-2:]
        if h >= 5 and w >= 5 and (h - 5) // 3 + 1 == 2 and (w - 5) // 3 + 1 == 2:
            x = self.pool(x)
        else:
            x = F.adaptive_avg_pool2d(x, 2)
        x = self.features(x)
        return self.classifier(x.flatten(1))


class NetworkEval(nn.Module):
    def __init__(self, genotype: Genotype, in_channels: int, out_dim: int, C: int = 36,
                 layers: int = 20, auxiliary: bool = False, drop_path_prob: float = 0.2,
                 stem_multiplier: int = 3, stem_stride: int = 1):
        super().__init__()
        self.genotype = genotype
        self.layers = layers
        self.auxiliary = auxiliary
        self.drop_path_prob = drop_path_prob
        C_curr = stem_multiplier * C
        self.stem = make_stem(in_channels, C_curr, stride=stem_stride)
        C_prev_prev, C_prev, C_curr = C_curr, C_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        self._aux_index = 2 * layers // 3
        C_aux = None
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                C_curr *= 2
            cell = EvalCell(genotype, C_prev_prev, C_prev, C_curr, reduction, reduction_prev)
            reduction_prev = reduction
            self.cells.append(cell)
            C_prev_prev, C_prev = C_prev, cell.multiplier * C_curr
            if i == self._aux_index:
                C_aux = C_prev
        self.auxiliary_head: Optional[AuxiliaryHead] = (
            AuxiliaryHead(C_aux, out_dim) if auxiliary and C_aux is not None else None)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, out_dim)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        logits_aux = None
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self._aux_index and self.auxiliary_head is not None and self.training:
                logits_aux = self.auxiliary_head(s1)
        out = self.global_pooling(s1).flatten(1)
        return self.classifier(out), logits_aux


def build_eval_network(genotype: Genotype, in_channels: int, out_dim: int, C: int = 36,
                       layers: int = 20, auxiliary: bool = True,
                       drop_path_prob: float = 0.2, stem_stride: int = 1) -> NetworkEval:
    """``stem_stride`` > 1 strides the stem conv (default 1: the paper's CIFAR network)."""
    if isinstance(genotype, dict):
        genotype = Genotype.from_dict(genotype)
    return NetworkEval(genotype, in_channels, out_dim, C=C, layers=layers, auxiliary=auxiliary,
                       drop_path_prob=drop_path_prob, stem_stride=stem_stride)


def count_parameters(model: nn.Module, exclude_auxiliary: bool = True,
                     exclude_alphas: bool = True) -> int:
    """Number of trainable-parameter elements; optionally without the auxiliary head
    (``model.auxiliary_head``) and the architecture parameters (``model.alphas()``)."""
    skip = set()
    if exclude_auxiliary and getattr(model, "auxiliary_head", None) is not None:
        skip.update(id(p) for p in model.auxiliary_head.parameters())
    if exclude_alphas and hasattr(model, "alphas") and callable(model.alphas):
        skip.update(id(p) for p in model.alphas())
    return sum(p.numel() for p in model.parameters() if id(p) not in skip)
