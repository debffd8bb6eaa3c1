"""Vector-observation networks: the SimBa residual MLP, a plain MLP, and streaming RL's LayerNorm MLP.

All take ``forward(obs, extra=None)``; ``extra`` (e.g. SAC's action for a Q network) is concatenated
to the (normalised) observation before the first layer, as the paper's critic does with (s, a).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from rllib_sparse.networks.init import he_truncated_normal_, orthogonal_
from rllib_sparse.networks.normalization import RunningObsNorm


def _concat(obs: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
    return obs if extra is None else torch.cat([obs, extra.to(obs.dtype)], dim=-1)


class SimBaBlock(nn.Module):
    """Pre-LayerNorm residual block with a 4x inverted bottleneck: z + W2·ReLU(W1·LN(z))."""

    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.up = nn.Linear(width, 4 * width)
        self.down = nn.Linear(4 * width, width)
        self.act = nn.ReLU()  # a module, so diagnostics can hook the post-activation outputs
        he_truncated_normal_(self.up)
        he_truncated_normal_(self.down)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z + self.down(self.act(self.up(self.norm(z))))


class SimBa(nn.Module):
    """SimBa encoder: running obs norm → dense projection → ``depth`` residual blocks → LayerNorm."""

    def __init__(self, obs_dim: int, width: int, depth: int, extra_dim: int = 0, obs_norm: bool = True):
        super().__init__()
        self.obs_norm = RunningObsNorm((obs_dim,)) if obs_norm else None
        self.input = nn.Linear(obs_dim + extra_dim, width)
        orthogonal_(self.input, 1.0)
        self.blocks = nn.Sequential(*[SimBaBlock(width) for _ in range(depth)])
        self.output_norm = nn.LayerNorm(width)
        self.output_dim = width

    def forward(self, obs: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        obs = obs.float()
        if self.obs_norm is not None:
            # Only the trainable copy learns statistics, only from training batches.
            if self.training and torch.is_grad_enabled() and self.input.weight.requires_grad:
                self.obs_norm.update(obs)
            obs = self.obs_norm(obs)
        return self.output_norm(self.blocks(self.input(_concat(obs, extra))))


class MLP(nn.Module):
    """``depth`` dense layers of ``width`` units with ReLU (orthogonal √2 init)."""

    def __init__(self, obs_dim: int, width: int, depth: int, extra_dim: int = 0, obs_norm: bool = False):
        super().__init__()
        self.obs_norm = RunningObsNorm((obs_dim,)) if obs_norm else None
        layers: list[nn.Module] = []
        in_dim = obs_dim + extra_dim
        for _ in range(depth):
            layer = nn.Linear(in_dim, width)
            orthogonal_(layer, math.sqrt(2.0))
            layers += [layer, nn.ReLU()]
            in_dim = width
        self.layers = nn.Sequential(*layers)
        self.output_dim = width

    def forward(self, obs: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        obs = obs.float()
        if self.obs_norm is not None:
            if self.training and torch.is_grad_enabled() and self.layers[0].weight.requires_grad:
                self.obs_norm.update(obs)
            obs = self.obs_norm(obs)
        return self.layers(_concat(obs, extra))


class LayerNormMLP(nn.Module):
    """``depth`` dense layers of ``width`` units, each followed by a parameter-free LayerNorm and
    LeakyReLU: the networks of streaming deep RL (Elsayed et al. 2024), whose per-layer normalisation
    keeps activations well scaled when every update uses one transition.

    Weights start as PyTorch's default U(±1/√fan_in) with zero biases; the streaming trainer then
    applies its initialisation (dense, SparseInit or a static mask: ``rllib_sparse.streaming``).
    """

    def __init__(self, obs_dim: int, width: int, depth: int, extra_dim: int = 0):
        super().__init__()
        layers: list[nn.Module] = []
        in_dim = obs_dim + extra_dim
        for _ in range(depth):
            layer = nn.Linear(in_dim, width)
            nn.init.zeros_(layer.bias)
            layers += [layer, nn.LayerNorm(width, elementwise_affine=False), nn.LeakyReLU()]
            in_dim = width
        self.layers = nn.Sequential(*layers)
        self.output_dim = width

    def forward(self, obs: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        return self.layers(_concat(obs.float(), extra))
