"""Image encoders: Nature-CNN (Mnih et al. 2015) and the Impala ResNet (Espeholt et al. 2018).

``width`` is a multiplier: channels and the dense layer scale together, so a width axis in a
scaling grid grows the whole encoder. Inputs are channels-last ``(H, W, C)`` as gymnasium and RLlib
deliver them; ``uint8`` frames are scaled to [0, 1]. ``extra`` features are concatenated after the
convolutions, before the dense layers.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from rllib_sparse.networks.init import orthogonal_

_RELU_GAIN = math.sqrt(2.0)


def _to_nchw(obs: torch.Tensor) -> torch.Tensor:
    x = obs.float()
    if obs.dtype == torch.uint8:
        x = x / 255.0
    return x.movedim(-1, -3)


def _conv_out(size: int, kernel: int, stride: int, padding: int = 0) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def _dense_stack(in_dim: int, width: int, depth: int) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    for _ in range(depth):
        layer = nn.Linear(in_dim, width)
        orthogonal_(layer, _RELU_GAIN)
        layers += [layer, nn.ReLU()]
        in_dim = width
    return nn.Sequential(*layers), in_dim


class NatureCNN(nn.Module):
    """Conv 32k 8x8/4 → 64k 4x4/2 → 64k 3x3/1 → ``depth`` dense layers of 512k units."""

    MIN_SIZE = 36

    def __init__(self, obs_shape: tuple[int, int, int], width: int = 1, depth: int = 1, extra_dim: int = 0):
        super().__init__()
        h, w, c = obs_shape
        if min(h, w) < self.MIN_SIZE:
            raise ValueError(f"observation shape {obs_shape} is too small for nature_cnn; "
                             f"allowed: height and width >= {self.MIN_SIZE}")
        convs = [(32 * width, 8, 4), (64 * width, 4, 2), (64 * width, 3, 1)]
        layers: list[nn.Module] = []
        in_ch = c
        for out_ch, k, s in convs:
            conv = nn.Conv2d(in_ch, out_ch, k, s)
            orthogonal_(conv, _RELU_GAIN)
            layers += [conv, nn.ReLU()]
            in_ch, h, w = out_ch, _conv_out(h, k, s), _conv_out(w, k, s)
        self.convs = nn.Sequential(*layers, nn.Flatten())
        self.dense, self.output_dim = _dense_stack(in_ch * h * w + extra_dim, 512 * width, depth)

    def forward(self, obs: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        x = self.convs(_to_nchw(obs))
        if extra is not None:
            x = torch.cat([x, extra.float()], dim=-1)
        return self.dense(x)


class _ImpalaResidual(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv0 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act0, self.act1 = nn.ReLU(), nn.ReLU()  # modules, so diagnostics can hook their outputs
        orthogonal_(self.conv0, _RELU_GAIN)
        orthogonal_(self.conv1, _RELU_GAIN)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv1(self.act1(self.conv0(self.act0(x))))


class ImpalaCNN(nn.Module):
    """Three stacks (16k, 32k, 32k channels): conv 3x3 → max-pool 3x3/2 → ``depth`` residual blocks;
    then ReLU and one dense layer of 256k units."""

    def __init__(self, obs_shape: tuple[int, int, int], width: int = 1, depth: int = 2, extra_dim: int = 0):
        super().__init__()
        h, w, c = obs_shape
        if min(h, w) < 8:
            raise ValueError(f"observation shape {obs_shape} is too small for impala_cnn; "
                             "allowed: height and width >= 8")
        stacks: list[nn.Module] = []
        in_ch = c
        for out_ch in (16 * width, 32 * width, 32 * width):
            conv = nn.Conv2d(in_ch, out_ch, 3, padding=1)
            orthogonal_(conv, _RELU_GAIN)
            stacks += [conv, nn.MaxPool2d(3, 2, padding=1), *[_ImpalaResidual(out_ch) for _ in range(depth)]]
            in_ch, h, w = out_ch, _conv_out(h, 3, 2, 1), _conv_out(w, 3, 2, 1)
        self.convs = nn.Sequential(*stacks, nn.ReLU(), nn.Flatten())
        self.dense, self.output_dim = _dense_stack(in_ch * h * w + extra_dim, 256 * width, 1)

    def forward(self, obs: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        x = self.convs(_to_nchw(obs))
        if extra is not None:
            x = torch.cat([x, extra.float()], dim=-1)
        return self.dense(x)
