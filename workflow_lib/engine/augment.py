"""Image augmentation on the device, a whole batch at a time (the standard CIFAR-10 pipeline of the DARTS
paper's code: random crop with zero padding, horizontal flip, per-channel normalisation; Cutout after).

- ``channel_stats(x, rows)``: per-channel mean and std of the training rows (the DARTS code's CIFAR_MEAN /
  CIFAR_STD are these numbers for the 50,000 training images).
- ``normalize(x, mean, std)``: every input, train and test, once, when the tensors are built.
- ``RandomCropFlip(padding, flip, pad_value)``: per image a random ``padding``-pixel shift (the crop of a
  zero-padded image; ``pad_value`` is what zero becomes after normalisation) and a random horizontal flip,
  drawn from the batch generator, so a resumed run draws the same numbers.
- ``Compose(*transforms)``: transforms in order (e.g. crop/flip, then Cutout).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def channel_stats(x: torch.Tensor, rows: torch.Tensor | Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) per channel over the given rows, shapes (C,); float64 accumulation."""
    sample = x.index_select(0, torch.as_tensor(rows, dtype=torch.long, device=x.device)).double()
    mean = sample.mean(dim=(0, 2, 3))
    std = sample.std(dim=(0, 2, 3), unbiased=False).clamp_min(1e-12)
    return mean.float(), std.float()


def normalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return (x - mean.view(1, -1, 1, 1).to(x)) / std.view(1, -1, 1, 1).to(x)


class RandomCropFlip:
    def __init__(self, padding: int = 4, flip: bool = True, pad_value: torch.Tensor | float = 0.0):
        if padding < 0:
            raise ValueError(f"crop padding must be >= 0, got {padding}")
        self.padding = int(padding)
        self.flip = bool(flip)
        self.pad_value = pad_value

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        p = self.padding
        if not isinstance(self.pad_value, torch.Tensor):
            return F.pad(x, (p, p, p, p), value=float(self.pad_value))
        # a per-channel value: what a zero pixel becomes after normalisation
        padded = F.pad(x, (p, p, p, p), value=0.0)
        border = torch.ones_like(padded[:1, :1])
        border[..., p:p + x.shape[2], p:p + x.shape[3]] = 0
        return padded + border * self.pad_value.view(1, -1, 1, 1).to(x)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, _, h, w = x.shape
        if self.padding:
            shift = torch.randint(0, 2 * self.padding + 1, (2, n), generator=generator).to(x.device)
            padded = self._pad(x)
            rows = (shift[0].view(n, 1) + torch.arange(h, device=x.device).view(1, h))  # (n, h)
            cols = (shift[1].view(n, 1) + torch.arange(w, device=x.device).view(1, w))  # (n, w)
            index = torch.arange(n, device=x.device).view(n, 1, 1)
            x = padded.permute(0, 2, 3, 1)[index, rows.view(n, h, 1), cols.view(n, 1, w)].permute(0, 3, 1, 2)
        if self.flip:
            flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
            x = torch.where(flip.view(n, 1, 1, 1), x.flip(3), x)
        return x.contiguous()

    def __repr__(self) -> str:
        return f"RandomCropFlip(padding={self.padding}, flip={self.flip})"


class Compose:
    def __init__(self, *transforms: Transform | None):
        self.transforms = [t for t in transforms if t is not None]

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for transform in self.transforms:
            x = transform(x, generator)
        return x

    def __repr__(self) -> str:
        return f"Compose({', '.join(map(repr, self.transforms))})"


def model_inputs(x: torch.Tensor, fit_rows: torch.Tensor | Sequence[int], cfg) -> tuple[torch.Tensor, torch.Tensor | float]:
    """(inputs, pad value): x normalised with the fit rows' per-channel statistics when ``cfg.normalize``
    (an AugmentConfig), and what a zero pixel becomes, for the crop's padding."""
    if cfg is None or not cfg.normalize:
        return x, 0.0
    mean, std = channel_stats(x, fit_rows)
    return normalize(x, mean, std), (-mean / std)


def train_transform(cfg, cutout_length: int, pad_value: torch.Tensor | float) -> Transform | None:
    """The training batches' transform: crop and flip (AugmentConfig), then Cutout (per step), or None."""
    from workflow_lib.engine.batches import Cutout

    crop = None
    if cfg is not None and (cfg.crop_padding or cfg.horizontal_flip):
        crop = RandomCropFlip(cfg.crop_padding, cfg.horizontal_flip, pad_value)
    cutout = Cutout(cutout_length) if cutout_length > 0 else None
    if crop is None or cutout is None:
        return crop or cutout
    return Compose(crop, cutout)
