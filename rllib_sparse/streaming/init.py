"""Streaming RL's three initialisations, as one axis of a sweep (``init``):

- ``dense``: every weight U(±1/√fan_in), biases 0;
- ``sparse_init``: stream-x's SparseInit — the same draw, then ⌈s·fan_in⌉ weights of every row set to 0.
  The zeros are only a starting point: they get gradients and move;
- ``static_mask``: this project's masks (``rllib_sparse.sparsity``: Erdős–Rényi or uniform layer
  densities, an exact global budget), pruned weights pinned at 0 for the whole run.
"""

from __future__ import annotations

import math

import torch
from torch import nn

INITS = ("dense", "sparse_init", "static_mask")


@torch.no_grad()
def uniform_fan_in_(module: nn.Module, generator: torch.Generator | None = None) -> None:
    """Every ``nn.Linear`` of ``module``: weights U(±1/√fan_in), biases 0."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            bound = 1.0 / math.sqrt(layer.in_features)
            layer.weight.uniform_(-bound, bound, generator=generator)
            if layer.bias is not None:
                layer.bias.zero_()


@torch.no_grad()
def sparse_init_(module: nn.Module, sparsity: float = 0.9, generator: torch.Generator | None = None) -> None:
    """SparseInit on every ``nn.Linear`` of ``module``: U(±1/√fan_in), then ⌈sparsity·fan_in⌉ zeros in
    each row (each output unit keeps the same number of inputs), biases 0. Nothing is masked."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity={sparsity!r} is invalid; allowed: a number in [0, 1)")
    uniform_fan_in_(module, generator)
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            zeros = math.ceil(sparsity * layer.in_features)
            if zeros:
                order = torch.rand(layer.weight.shape, generator=generator).argsort(dim=1)
                layer.weight.scatter_(1, order[:, :zeros], 0.0)
