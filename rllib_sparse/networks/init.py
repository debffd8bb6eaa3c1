"""Weight initialisers matching the paper's code (dense init first, masking afterwards)."""

from __future__ import annotations

import math

import torch
from torch import nn

# Flax's variance_scaling(..., "truncated_normal") divides by the std of a unit normal truncated to
# [-2, 2], so that the *truncated* distribution has the requested variance.
_TRUNCATED_NORMAL_STD = 0.87962566103423978


def he_truncated_normal_(layer: nn.Linear | nn.Conv2d) -> None:
    """He (fan-in, scale 2) truncated normal, as Flax ``he_normal``; bias zero."""
    fan_in = layer.weight[0].numel()
    std = math.sqrt(2.0 / fan_in) / _TRUNCATED_NORMAL_STD
    nn.init.trunc_normal_(layer.weight, std=std, a=-2.0 * std, b=2.0 * std)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def orthogonal_(layer: nn.Linear | nn.Conv2d, gain: float = 1.0) -> None:
    """Orthogonal weights with ``gain``; bias zero."""
    with torch.no_grad():
        nn.init.orthogonal_(layer.weight, gain=gain)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def linear_head(in_dim: int, out_dim: int, gain: float = 1.0) -> nn.Linear:
    """A single dense output layer (the paper's policy, value and Q heads), orthogonal init."""
    head = nn.Linear(in_dim, out_dim)
    orthogonal_(head, gain)
    return head


class GaussianHead(nn.Module):
    """A Gaussian policy's head as two kernels, mean and log-std, each ``in_dim × act_dim``.

    Why not one ``in_dim × 2·act_dim`` kernel split in two: the Erdős–Rényi allocation sizes a layer's
    density from its shape, and the paper's code (two Dense layers) gives each half the density of an
    ``in_dim × act_dim`` kernel. One fused kernel would be pruned far harder (humanoid actor, width 128,
    S = 0.8: density 0.56 instead of about 0.87) and the rest of the actor less. The output is
    ``[mean, log_std_input]``, the layout RLlib's Gaussian distributions split with ``chunk(2)``.
    """

    def __init__(self, in_dim: int, act_dim: int, gain: float = 1.0):
        super().__init__()
        self.mean = linear_head(in_dim, act_dim, gain)
        self.log_std = linear_head(in_dim, act_dim, gain)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.mean(features), self.log_std(features)], dim=-1)
