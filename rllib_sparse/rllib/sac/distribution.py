"""The policy's action distribution as the authors' SAC parametrises it.

log σ = −10 + 6·(1 + tanh u), so σ ∈ [e⁻¹⁰, e²] (RLlib clamps log σ to [−5, 2]); the deterministic
(evaluation) action is tanh(μ) (RLlib's is μ clipped to the action bounds).
"""

from __future__ import annotations

import torch
from ray.rllib.core.distribution.torch.torch_distribution import TorchDeterministic, TorchSquashedGaussian
from ray.rllib.utils.annotations import override

#: The authors' bounds on the policy's log standard deviation (``NormalTanhPolicy``).
LOG_STD_MIN, LOG_STD_MAX = -10.0, 2.0


def log_std_from_raw(raw: torch.Tensor) -> torch.Tensor:
    """log σ = min + (max − min)·½(1 + tanh u): smooth, with gradients everywhere (no clamp)."""
    return LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (1.0 + torch.tanh(raw))


class PaperSquashedGaussian(TorchSquashedGaussian):
    """RLlib's tanh-squashed Gaussian with the authors' log-std map and a tanh deterministic action."""

    @classmethod
    @override(TorchSquashedGaussian)
    def from_logits(cls, logits: torch.Tensor, low: float = -1.0, high: float = 1.0, **kwargs):
        loc, raw = logits.chunk(2, dim=-1)
        return cls(loc=loc, scale=log_std_from_raw(raw).exp(), low=low, high=high, **kwargs)

    @override(TorchSquashedGaussian)
    def to_deterministic(self) -> TorchDeterministic:
        return TorchDeterministic(loc=self._squash(self.loc))
