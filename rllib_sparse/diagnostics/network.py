"""All diagnostics of one network (encoder + output heads) on a held-out batch, in one call."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from rllib_sparse.diagnostics.metrics import (
    dormant_ratios,
    gradient_cosines,
    interference_summary,
    parameter_norm,
    recorded_activations,
    srank,
)


class Heads(nn.Module):
    """Several output heads on the same features, as one module (e.g. DQN's advantage and value)."""

    def __init__(self, heads: Sequence[nn.Module]):
        super().__init__()
        self.heads = nn.ModuleList(heads)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.cat([head(features) for head in self.heads], dim=-1)


def gradient_norm(modules: Sequence[nn.Module]) -> float:
    """L2 norm of the gradients the last backward pass left in ``.grad`` (pruned entries hold 0)."""
    total = 0.0
    for p in {id(p): p for m in modules for p in m.parameters()}.values():
        if p.grad is not None:
            total += float(p.grad.detach().double().pow(2).sum())
    return math.sqrt(total)


def network_diagnostics(
    encoder: nn.Module,
    head: nn.Module,
    obs: torch.Tensor,
    extra: torch.Tensor | None = None,
    *,
    delta: float = 0.01,
    taus: Sequence[float] = (0.0, 0.1),
    interference_samples: int = 32,
    chunk_size: int = 8,
) -> tuple[dict[str, float], torch.Tensor]:
    """Metrics of ``head(encoder(obs, extra))`` and the gradient-cosine matrix.

    - ``srank`` and ``feature_norm`` (mean L2 norm per sample) of the encoder output;
    - ``dormant_tau<τ>`` over the encoder's post-activation outputs (all its neurons together), and
      per layer (``dormant_tau<τ>/<layer>``);
    - ``param_norm`` over encoder and head;
    - ``grad_cosine_mean``/``grad_negative_fraction``: per-sample gradients of the head's output
      (summed over its units: the network function's own gradient, independent of the algorithm's
      loss) on the first ``interference_samples`` samples; pruned entries take no part.

    The network is put in eval mode meanwhile (no running-statistics updates) and restored after.
    """
    modes = {m: m.training for m in (*encoder.modules(), *head.modules())}
    encoder.eval()
    head.eval()
    try:
        with torch.no_grad(), recorded_activations(encoder) as activations:
            features = encoder(obs, extra) if extra is not None else encoder(obs)
        metrics: dict[str, float] = {
            "srank": float(srank(features, delta)),
            "feature_norm": float(features.norm(dim=1).mean()),
            "param_norm": math.hypot(parameter_norm(encoder), parameter_norm(head)),
        }
        for tau in taus:
            per_layer, total = dormant_ratios(activations, tau)
            metrics[f"dormant_tau{tau:g}"] = total
            metrics.update({f"dormant_tau{tau:g}/{name}": value for name, value in per_layer.items()})
        cosines = torch.zeros(0, 0)
        if interference_samples >= 2:
            cosines = _output_gradient_cosines(encoder, head, obs, extra, interference_samples, chunk_size)
            metrics.update(interference_summary(cosines))
        return metrics, cosines
    finally:
        for module, training in modes.items():
            module.training = training


def _output_gradient_cosines(encoder, head, obs, extra, n, chunk_size) -> torch.Tensor:
    """Per-sample gradients of the summed head output (torch.func); sparse layers mask their share.

    Only parameters are swapped in; buffers (masks, observation-normalisation statistics) are the
    modules' own.
    """
    params = {f"encoder.{k}": p.detach() for k, p in encoder.named_parameters()}
    params.update({f"head.{k}": p.detach() for k, p in head.named_parameters()})

    def output(p, sample):
        x, *e = (t.unsqueeze(0) for t in sample)
        features = torch.func.functional_call(encoder, _sub(p, "encoder."), (x, *e))
        return torch.func.functional_call(head, _sub(p, "head."), (features,)).sum()

    inputs = (obs[:n],) if extra is None else (obs[:n], extra[:n])
    cosines, _ = gradient_cosines(output, params, inputs, chunk_size)
    return cosines


def _sub(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
