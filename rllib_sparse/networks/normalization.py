"""Running observation normalisation (SimBa): x̂ = (x − μ) / sqrt(σ² + 1e-8)."""

from __future__ import annotations

import torch
from torch import nn


class RunningObsNorm(nn.Module):
    """Normalises inputs with running mean/variance kept as buffers.

    The statistics are buffers, so they travel with the weights (learner → env runners, checkpoints).
    The owning network decides when to update them (see ``SimBa.forward``): only on the trainable copy
    while autograd records, i.e. on the learner's training batches, never at inference.
    Counts are float64 so that RLlib's Polyak average of target-network state keeps them exact.
    """

    def __init__(self, shape: tuple[int, ...], eps: float = 1e-8, initial_count: float = 1e-4):
        super().__init__()
        self.eps = eps
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("var", torch.ones(shape))
        self.register_buffer("count", torch.tensor(initial_count, dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Parallel (Chan et al.) merge of the batch moments into the running moments."""
        x = x.reshape(-1, *self.mean.shape).to(self.mean.dtype)
        n = x.shape[0]
        if n == 0:
            return
        batch_mean = x.mean(0)
        batch_var = x.var(0, unbiased=False)
        total = self.count + n
        delta = batch_mean - self.mean
        new_mean = self.mean + delta * (n / total).to(self.mean.dtype)
        m2 = (self.var * self.count.to(self.var.dtype) + batch_var * n
              + delta.pow(2) * (self.count * n / total).to(self.var.dtype))
        self.mean.copy_(new_mean)
        self.var.copy_(m2 / total.to(self.var.dtype))
        self.count.copy_(total)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / torch.sqrt(self.var + self.eps)
