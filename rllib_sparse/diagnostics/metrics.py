"""The paper's plasticity diagnostics, for any torch network (no Ray import).

- ``srank`` (Kumar et al. 2021): how many singular directions carry 1 - δ of the feature matrix's
  spectrum. It cannot exceed the batch size, so use a batch at least as large as the feature width.
- ``dormant_ratios`` (Sokar et al. 2023): a neuron is dormant when its mean |output| is at most
  τ times the layer's average (τ = 0: exactly silent). Which outputs are scored is a convention
  (``DORMANT_CONVENTIONS``): the paper's code scores the pre-activation outputs of every weight layer,
  in percent, at τ 0.1 and 0.2; the usual definition scores post-activation outputs.
- ``gradient_cosines`` (Lyle et al. 2023): cosine similarity of per-sample gradients (``torch.func``);
  mostly positive off-diagonal entries mean that updates for one sample move the others the same way,
  negative ones mean interference.
- norms of parameters, gradients and features.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping

import torch
from torch import nn

#: Modules whose outputs are "post-activation" for the dormant-neuron count.
ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Mish)
#: Modules whose outputs are "pre-activation": every weight layer (sparse ones subclass these).
WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclasses.dataclass(frozen=True)
class DormantConvention:
    """Which outputs the dormant-neuron count scores, in which unit, at which τ by default."""

    modules: tuple[type[nn.Module], ...]
    scale: float  # 100: percent, 1: fraction
    default_taus: tuple[float, ...]
    key: str  # metric name prefix, e.g. ``dormant_pct`` -> ``dormant_pct_tau0.1``


#: ``pre_activation`` is the paper's code (``get_dormant_ratio`` on every Dense output of the encoder:
#: the input projection, the 4x expansion before its ReLU, a block's output before the residual add),
#: in percent at τ 0.1 and 0.2 -- the default wherever numbers meet the paper's figures.
#: ``post_activation`` is the usual definition (Sokar et al. 2023), as a fraction at τ 0 and 0.1.
#: The two are not comparable: on one sparse SimBa critic they gave 30.3% vs 7.8%.
DORMANT_CONVENTIONS = {
    "pre_activation": DormantConvention(WEIGHT_LAYERS, 100.0, (0.1, 0.2), "dormant_pct"),
    "post_activation": DormantConvention(ACTIVATIONS, 1.0, (0.0, 0.1), "dormant"),
}


def srank(features: torch.Tensor, delta: float = 0.01) -> int:
    """min k such that the top-k singular values hold a (1 - δ) share of their sum (0 for all-zero)."""
    if features.dim() != 2:
        raise ValueError(f"features must be a (batch, width) matrix; got shape {tuple(features.shape)}")
    sigma = torch.linalg.svdvals(features.detach().double())
    total = sigma.sum()
    if total <= 0:
        return 0
    cumulative = torch.cumsum(sigma, 0) / total
    # Counting the entries below 1 - δ keeps everything on the features' own device (CPU or GPU).
    return int((cumulative < 1.0 - delta).sum().item()) + 1


def neuron_scores(activation: torch.Tensor) -> torch.Tensor:
    """Mean |activation| per neuron: over the batch, and over space for conv feature maps (B, C, ...)."""
    a = activation.detach().abs()
    return a.mean(dim=0) if a.dim() == 2 else a.transpose(0, 1).reshape(a.shape[1], -1).mean(dim=1)


def dormant_ratios(activations: Mapping[str, torch.Tensor], tau: float) -> tuple[dict[str, float], float]:
    """Fraction of dormant neurons per layer, and over all layers' neurons together."""
    per_layer, dormant, total = {}, 0, 0
    for name, activation in activations.items():
        scores = neuron_scores(activation)
        mean = scores.mean()
        normalised = scores / mean if mean > 0 else torch.zeros_like(scores)
        count = int((normalised <= tau).sum().item())
        per_layer[name] = count / scores.numel()
        dormant, total = dormant + count, total + scores.numel()
    return per_layer, (dormant / total if total else 0.0)


def dormant_convention(name: str) -> DormantConvention:
    try:
        return DORMANT_CONVENTIONS[name]
    except KeyError:
        raise ValueError(f"dormant convention {name!r} is unknown; allowed: {', '.join(DORMANT_CONVENTIONS)}") from None


@contextlib.contextmanager
def recorded_activations(network: nn.Module) -> Iterator[dict[str, torch.Tensor]]:
    """Collect the output of every activation module of ``network`` during the forward passes inside."""
    with recorded_outputs(network, ACTIVATIONS) as outputs:
        yield outputs


@contextlib.contextmanager
def recorded_outputs(network: nn.Module, kinds: tuple[type[nn.Module], ...]) -> Iterator[dict[str, torch.Tensor]]:
    """Collect the output of every ``kinds`` module of ``network`` during the forward passes inside."""
    outputs: dict[str, torch.Tensor] = {}
    handles = []
    for name, module in network.named_modules():
        if isinstance(module, kinds):
            handles.append(module.register_forward_hook(
                lambda _m, _i, out, name=name: outputs.__setitem__(name, out.detach())))
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def parameter_norm(network: nn.Module) -> float:
    """L2 norm over all parameters (pruned weights are exactly 0 and add nothing)."""
    return math.sqrt(sum(float(p.detach().double().pow(2).sum()) for p in network.parameters()))


def gradient_cosines(
    loss: Callable[[dict[str, torch.Tensor], tuple[torch.Tensor, ...]], torch.Tensor],
    params: dict[str, torch.Tensor],
    inputs: tuple[torch.Tensor, ...],
    chunk_size: int = 8,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample gradients of ``loss(params, one_sample_inputs)`` and their cosine matrix.

    ``loss`` is a function of the parameter dict and one sample (inputs without the batch dim), as
    ``torch.func.grad`` needs. Gradients are taken in chunks of ``chunk_size`` samples and kept as one
    float32 vector per sample: memory is about (n + chunk_size) × parameters × 4 bytes.
    Returns (cosine matrix (n, n), mean gradient (flat)), both float64.
    """
    from torch.func import grad, vmap

    per_sample = vmap(grad(loss), in_dims=(None, 0))
    n = inputs[0].shape[0]
    flats = []
    for start in range(0, n, chunk_size):
        chunk = tuple(x[start:start + chunk_size] for x in inputs)
        grads = per_sample(params, chunk)
        flats.append(torch.cat([g.detach().reshape(g.shape[0], -1).float() for g in grads.values()], dim=1))
    g = torch.cat(flats)
    norms = g.norm(dim=1, keepdim=True)
    unit = g / norms.clamp_min(1e-30)
    cosines = (unit @ unit.T).double()
    # Symmetric with a unit diagonal by definition; a float32 product rounds its two triangles apart
    # (BLAS blocking: ~5e-8 seen), which a consumer comparing entries pairwise would trip on.
    cosines = (cosines + cosines.T) / 2
    cosines.diagonal().fill_(1.0)
    silent = norms.squeeze(1) == 0  # a zero gradient has no direction: no similarity either way
    cosines[silent] = 0.0
    cosines[:, silent] = 0.0
    return cosines, g.mean(dim=0, dtype=torch.float64)


def interference_summary(cosines: torch.Tensor) -> dict[str, float]:
    """Mean off-diagonal cosine and the fraction of negative pairs (each unordered pair once)."""
    n = cosines.shape[0]
    if n < 2:
        return {"grad_cosine_mean": float("nan"), "grad_negative_fraction": float("nan")}
    upper = cosines[torch.triu_indices(n, n, offset=1).unbind()]
    return {"grad_cosine_mean": float(upper.mean()), "grad_negative_fraction": float((upper < 0).double().mean())}
