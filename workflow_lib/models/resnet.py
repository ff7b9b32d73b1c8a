"""CIFAR-style ResNet for small images (any input size, any number of channels).

Design (He et al. 2016 BasicBlock ResNet, the usual CIFAR variant):
3x3 stride-1 stem conv (no bias) + BN + ReLU, no max-pool; stages of ``torchvision.models.resnet.BasicBlock``
with widths w, 2w, 4w, 8w and strides 1, 2, 2, 2; a downsample (``conv1x1`` stride s, no bias, + BN) where the
shape changes; adaptive average pooling to 1x1 (so 1x32x80, 3x32x32 and 1x8x8 all work); a linear head.

Parameter counts with 1 input channel and 1 output (the published figures; tested):
- ``resnet18()``    = blocks [2,2,2,2], width 64: 11,168,193
- ``tiny_resnet()`` = blocks [1,1,1,1] (ResNet-10), width 8: 77,273
The straightforward design above gives both numbers exactly (no stem bias, conv1x1+BN downsample, linear
head with bias, BN affine).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
from torchvision.models.resnet import BasicBlock, conv1x1


class CifarResNet(nn.Module):
    def __init__(self, blocks: Sequence[int] = (2, 2, 2, 2), width: int = 64, in_channels: int = 3,
                 out_dim: int = 10):
        super().__init__()
        self.in_planes = width
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        stages = []
        for i, n_blocks in enumerate(blocks):
            stages.append(self._stage(width * 2**i, n_blocks, stride=1 if i == 0 else 2))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.in_planes, out_dim)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _stage(self, planes: int, n_blocks: int, stride: int) -> nn.Sequential:
        layers = []
        for b in range(n_blocks):
            s = stride if b == 0 else 1
            downsample = None
            if s != 1 or self.in_planes != planes:
                downsample = nn.Sequential(conv1x1(self.in_planes, planes, s), nn.BatchNorm2d(planes))
            layers.append(BasicBlock(self.in_planes, planes, stride=s, downsample=downsample))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        return self.fc(torch.flatten(self.pool(x), 1))


def resnet18(in_channels: int = 3, out_dim: int = 10, width: int = 64) -> CifarResNet:
    return CifarResNet((2, 2, 2, 2), width, in_channels, out_dim)


def tiny_resnet(in_channels: int = 3, out_dim: int = 10, width: int = 8) -> CifarResNet:
    return CifarResNet((1, 1, 1, 1), width, in_channels, out_dim)
