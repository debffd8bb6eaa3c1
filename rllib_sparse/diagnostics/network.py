"""All diagnostics of one network (encoder + output heads) on a held-out batch, in one call."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from rllib_sparse.diagnostics.metrics import (
    dormant_convention,
    dormant_ratios,
    gradient_cosines,
    interference_summary,
    parameter_norm,
    recorded_outputs,
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


class GradientNormWindow:
    """Per network, the sum of each update's gradient L2 norm (over its kept weights: pruned entries
    hold 0) and the number of updates, since the last ``mean_and_reset``.

    Why: the paper's code logs the mean of the per-update norms over a logging window; one
    minibatch's norm is far noisier and not the same number. ``add_update`` costs one fused norm
    per network and stays on the device (no host sync), so it can run after every update.
    """

    def __init__(self, networks: dict[str, list[nn.Module]]):
        self._params = {name: list({id(p): p for m in modules for p in m.parameters()}.values())
                        for name, modules in networks.items()}
        self._sums: dict[str, torch.Tensor] = {}
        self.updates = 0

    def add_update(self) -> None:
        for name, params in self._params.items():
            grads = [p.grad for p in params if p.grad is not None]
            if grads:
                norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
                self._sums[name] = self._sums[name] + norm if name in self._sums else norm
        self.updates += 1

    def mean_and_reset(self) -> tuple[dict[str, float], int]:
        """``({network: mean norm}, number of updates)`` of this window, then start a new one."""
        means = {name: float(total) / self.updates for name, total in self._sums.items()} if self.updates else {}
        window = (means, self.updates)
        self._sums, self.updates = {}, 0
        return window


def network_diagnostics(
    encoder: nn.Module,
    head: nn.Module,
    obs: torch.Tensor,
    extra: torch.Tensor | None = None,
    *,
    delta: float = 0.01,
    dormant: str = "pre_activation",
    taus: Sequence[float] | None = None,
    interference_samples: int = 32,
    chunk_size: int = 8,
) -> tuple[dict[str, float], torch.Tensor]:
    """Metrics of ``head(encoder(obs, extra))`` and the gradient-cosine matrix.

    - ``srank`` and ``feature_norm`` (mean L2 norm per sample) of the encoder output;
    - dormant neurons of the encoder at each τ (default: the convention's), all its layers' neurons
      together and per layer: ``dormant_pct_tau<τ>[/<layer>]`` in percent of the pre-activation outputs
      of every weight layer (``dormant="pre_activation"``, the paper's code, default), or
      ``dormant_tau<τ>[/<layer>]`` as a fraction of post-activation outputs (``"post_activation"``);
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
        convention = dormant_convention(dormant)
        with torch.no_grad(), recorded_outputs(encoder, convention.modules) as outputs:
            features = encoder(obs, extra) if extra is not None else encoder(obs)
        metrics: dict[str, float] = {
            "srank": float(srank(features, delta)),
            "feature_norm": float(features.norm(dim=1).mean()),
            "param_norm": math.hypot(parameter_norm(encoder), parameter_norm(head)),
        }
        for tau in convention.default_taus if taus is None else taus:
            per_layer, total = dormant_ratios(outputs, tau)
            key = f"{convention.key}_tau{tau:g}"
            metrics[key] = total * convention.scale
            metrics.update({f"{key}/{name}": value * convention.scale for name, value in per_layer.items()})
        cosines = torch.zeros(0, 0, device=obs.device)
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
