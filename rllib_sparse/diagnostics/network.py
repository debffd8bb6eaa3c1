"""All diagnostics of one network (encoder + output head) on a held-out batch, in one call."""

from __future__ import annotations

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


def network_diagnostics(
    encoder: nn.Module,
    head: nn.Module,
    obs: torch.Tensor,
    extra: torch.Tensor | None = None,
    *,
    delta: float = 0.01,
    taus: tuple[float, ...] = (0.0, 0.1),
    interference_samples: int = 32,
    chunk_size: int = 8,
) -> tuple[dict[str, float], torch.Tensor]:
    """Metrics of ``head(encoder(obs, extra))`` and the gradient-cosine matrix.

    - ``srank`` and ``feature_norm`` (mean L2 norm per sample) of the encoder output;
    - ``dormant_tau<τ>`` over the encoder's post-activation outputs (total) and per layer
      (``dormant_tau<τ>/<layer>``);
    - ``param_norm`` over encoder and head;
    - ``grad_norm``: norm of the mean per-sample gradient of the head's output (summed over its
      units), pruned entries excluded, and ``grad_cosine_mean``/``grad_negative_fraction`` over the
      first ``interference_samples`` samples.

    The network is put in eval mode meanwhile (no running-statistics updates) and restored after.
    """
    modes = {m: m.training for m in (encoder, head)}
    encoder.eval()
    head.eval()
    try:
        with torch.no_grad(), recorded_activations(encoder) as activations:
            features = encoder(obs, extra) if extra is not None else encoder(obs)
        metrics: dict[str, float] = {
            "srank": float(srank(features, delta)),
            "feature_norm": float(features.norm(dim=1).mean()),
            "param_norm": float(torch.tensor([parameter_norm(encoder), parameter_norm(head)]).norm()),
        }
        for tau in taus:
            per_layer, total = dormant_ratios(activations, tau)
            metrics[f"dormant_tau{tau:g}"] = total
            metrics.update({f"dormant_tau{tau:g}/{name}": value for name, value in per_layer.items()})
        cosines, mean_grad = _output_gradients(encoder, head, obs, extra, interference_samples, chunk_size)
        metrics["grad_norm"] = float(mean_grad.norm())
        metrics.update(interference_summary(cosines))
        return metrics, cosines
    finally:
        for module, training in modes.items():
            module.train(training)


def _output_gradients(encoder, head, obs, extra, n, chunk_size):
    """Per-sample gradients of the summed head output (torch.func); sparse layers mask their share."""
    model = nn.ModuleDict({"encoder": encoder, "head": head})
    params = {name: p.detach() for name, p in model.named_parameters()}

    def output(p, sample):
        o, *e = sample
        x = o.unsqueeze(0)
        feats = torch.func.functional_call(encoder, {k[len("encoder."):]: v for k, v in p.items()
                                                     if k.startswith("encoder.")},
                                           (x, e[0].unsqueeze(0)) if e else (x,))
        return torch.func.functional_call(head, {k[len("head."):]: v for k, v in p.items()
                                                 if k.startswith("head.")}, (feats,)).sum()

    inputs = (obs[:n],) if extra is None else (obs[:n], extra[:n])
    return gradient_cosines(output, params, inputs, chunk_size)
