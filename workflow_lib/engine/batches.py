"""Index-based mini-batches from tensors already on the device (no DataLoader, no worker processes).

``Batches(x, y, batch_size, shuffle=True, generator=None, drop_last=False, transform=None, index=None,
max_steps=None, world=None)``

- ``x`` (N, C, H, W) and ``y`` (N,) tensors on the training device; ``index`` the rows to use (default all).
- each ``iter()`` is one epoch: a permutation drawn from ``generator`` (a CPU ``torch.Generator``) when
  shuffling; at most ``max_steps`` batches (None = all).
- ``transform(xb, generator) -> xb`` is applied to every training batch (e.g. ``Cutout``); it draws its random
  numbers from the same generator, so checkpointing the generator (``state_dict``) makes resume exact.
- ``world`` (``engine.distributed.World``; default: this process's): in a training of P processes
  ``batch_size`` is the global batch. Every process draws the same permutation (and the transform's random
  numbers for the whole step), and rank r keeps the r-th of P equal slices of each step (``distributed.shard``):
  the union of one step's slices is the 1-process batch. A short last step of m rows keeps m // P rows per
  process (the m % P others are left out of that epoch); a step too short for one row per process is skipped.
- ``len(batches)`` = steps per epoch. ``state_dict()`` / ``load_state_dict()`` hold the generator state, so a
  Batches can be an ``EpochLoop`` component directly.

``Cutout(length)``: DeVries & Taylor (2017): per image one length x length square (centre uniform over the
image, clipped at the borders) set to zero.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from workflow_lib.engine import distributed


class Cutout:
    def __init__(self, length: int):
        if length <= 0:
            raise ValueError(f"cutout length must be positive, got {length}")
        self.length = int(length)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, _, h, w = x.shape
        cy = torch.randint(0, h, (n,), generator=generator).to(x.device)
        cx = torch.randint(0, w, (n,), generator=generator).to(x.device)
        half = self.length // 2
        rows = torch.arange(h, device=x.device).view(1, h, 1)
        cols = torch.arange(w, device=x.device).view(1, 1, w)
        y0 = (cy - half).clamp(0, h).view(n, 1, 1)
        y1 = (cy + half).clamp(0, h).view(n, 1, 1)
        x0 = (cx - half).clamp(0, w).view(n, 1, 1)
        x1 = (cx + half).clamp(0, w).view(n, 1, 1)
        hole = (rows >= y0) & (rows < y1) & (cols >= x0) & (cols < x1)  # (n, h, w)
        return x * (~hole).unsqueeze(1).to(x.dtype)

    def __repr__(self) -> str:
        return f"Cutout({self.length})"


def make_generator(seed: int) -> torch.Generator:
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    return generator


class Batches:
    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        shuffle: bool = True,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
        transform: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
        index: Sequence[int] | np.ndarray | torch.Tensor | None = None,
        max_steps: int | None = None,
        world: distributed.World | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.x = x
        self.y = y
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.generator = generator if generator is not None else torch.Generator()
        self.drop_last = bool(drop_last)
        self.transform = transform
        if index is None:
            index = torch.arange(x.shape[0])
        self.index = torch.as_tensor(np.asarray(index), dtype=torch.long).cpu()
        if self.index.numel() == 0:
            raise ValueError("Batches: empty index (no samples to train on)")
        self.world = world if world is not None else distributed.current()
        if self.index.numel() < self.world.size:
            raise ValueError(f"Batches: {self.index.numel()} samples cannot give each of {self.world.size} "
                             "processes a row")
        self.max_steps = max_steps

    def __len__(self) -> int:
        n = self.index.numel()
        if self.world.distributed and not self.drop_last and n % self.batch_size < self.world.size:
            steps = n // self.batch_size  # the short last step would leave a process without a row
        else:
            steps = n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        steps = max(steps, 1) if not self.drop_last else steps
        return min(steps, self.max_steps) if self.max_steps else steps

    @property
    def num_samples(self) -> int:
        return self.index.numel()

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self.index
        if self.shuffle:
            order = order[torch.randperm(order.numel(), generator=self.generator)]
        steps = len(self)
        device_order = order.to(self.x.device)
        for step in range(steps):
            rows = device_order[step * self.batch_size:(step + 1) * self.batch_size]
            if self.world.distributed and self.transform is not None:
                # the transform draws for the whole step, as in one process; this process keeps its slice
                keep = distributed.shard(torch.arange(rows.numel(), device=rows.device), self.world)
                xb = self.transform(self.x.index_select(0, rows), self.generator).index_select(0, keep)
                yield xb, self.y.index_select(0, rows.index_select(0, keep))
                continue
            rows = distributed.shard(rows, self.world)
            xb = self.x.index_select(0, rows)
            yb = self.y.index_select(0, rows)
            if self.transform is not None:
                xb = self.transform(xb, self.generator)
            yield xb, yb

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
