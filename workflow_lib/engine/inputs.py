"""Input resolution: keep every k-th row and column of the images a network sees.

A proxy resolution makes a search or a baseline cheaper without touching the data on disk: the 2019
kirigami study fed its ResNets every second column of the 32x80 image (stride [1, 2]), and a DARTS proxy
search can run coarser still. On the kirigami image every coarse cut is at least 3 rows by 16 columns, so
row stride 2 with column stride up to 16 keeps every cut visible (tests check this on all patterns).
"""

from __future__ import annotations

from typing import Sequence

import torch

Stride = Sequence[int]


def check_stride(stride: Stride) -> tuple[int, int]:
    rows, cols = (int(s) for s in stride)
    if rows < 1 or cols < 1:
        raise ValueError(f"input stride must be two positive integers, got {list(stride)}")
    return rows, cols


def subsample(x: torch.Tensor, stride: Stride) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, ceil(H/rows), ceil(W/cols)): rows 0, rows, 2*rows, ... (a contiguous copy)."""
    rows, cols = check_stride(stride)
    if (rows, cols) == (1, 1):
        return x
    return x[:, :, ::rows, ::cols].contiguous()


def strided_shape(shape: Sequence[int], stride: Stride) -> list[int]:
    """(C, H, W) after ``subsample``."""
    rows, cols = check_stride(stride)
    channels, height, width = (int(s) for s in shape)
    return [channels, -(-height // rows), -(-width // cols)]
