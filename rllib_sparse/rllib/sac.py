"""SAC with the settings the paper's SimBa code uses that RLlib's SACConfig cannot express.

RLlib's SAC (its training loop, replay buffer, losses and target updates) is used as is. What this adds:

- ``weight_decay``: AdamW (decoupled decay) for actor and critics, as the paper (1e-2); the temperature
  keeps plain Adam. 0 (the default) leaves RLlib's optimizers unchanged.
- ``target_entropy_scale``: target entropy = scale × |A| (the paper: −0.5; RLlib's ``"auto"`` is −1).
- ``random_warmup_steps``: uniform random actions for the first N env steps (the paper: 5,000),
  counted by RLlib's global env-step counter, which a restored checkpoint carries, so a resumed trial
  does not explore randomly again.
- Replay sampling: where the config names RLlib's uniform ``EpisodeReplayBuffer``, ``SparseSAC`` builds
  ``rllib_sparse.rllib.replay.FastEpisodeReplayBuffer`` — RLlib's buffer, the same transitions from
  the same random draws, without slicing an episode per transition (half the time per sample).
- The policy's log-std as the authors parametrise it: log σ = −10 + 6·(1 + tanh u), so σ ∈ [e⁻¹⁰, e²]
  (RLlib clamps log σ to [−5, 2]); the deterministic (evaluation) action is tanh(μ) (RLlib's is μ
  clipped to the action bounds).
"""

from __future__ import annotations

import torch
from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.algorithms.sac import SAC, SACConfig
from ray.rllib.core.distribution.torch.torch_distribution import TorchDeterministic, TorchSquashedGaussian
from ray.rllib.utils.annotations import override

from rllib_sparse.rllib.replay import FAST_EPISODE_REPLAY_BUFFER

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


class SparseSACConfig(SACConfig):
    """``SACConfig`` plus the paper's optimizer, target entropy and random warm-up (module docstring)."""

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or SparseSAC)
        self.weight_decay = 0.0
        self.target_entropy_scale: float | None = None
        self.random_warmup_steps = 0

    @override(SACConfig)
    def training(self, *, weight_decay=NotProvided, target_entropy_scale=NotProvided,
                 random_warmup_steps=NotProvided, **kwargs) -> SparseSACConfig:
        """RLlib's SAC settings, plus:

        Args:
            weight_decay: AdamW's decoupled weight decay for actor and critics (0: RLlib's Adam).
            target_entropy_scale: target entropy = this × |A|; overrides ``target_entropy``.
            random_warmup_steps: env steps of uniform random actions before the policy acts.
        """
        super().training(**kwargs)
        if weight_decay is not NotProvided:
            self.weight_decay = weight_decay
        if target_entropy_scale is not NotProvided:
            self.target_entropy_scale = target_entropy_scale
        if random_warmup_steps is not NotProvided:
            self.random_warmup_steps = random_warmup_steps
        return self

    @override(SACConfig)
    def validate(self) -> None:
        super().validate()
        if not isinstance(self.weight_decay, (int, float)) or self.weight_decay < 0:
            self._value_error(f"weight_decay={self.weight_decay!r} is invalid; allowed: a number >= 0")
        if not isinstance(self.random_warmup_steps, int) or self.random_warmup_steps < 0:
            self._value_error(f"random_warmup_steps={self.random_warmup_steps!r} is invalid; allowed: an integer >= 0")

    @property
    @override(SACConfig)
    def _model_config_auto_includes(self):
        # The env runners' modules read the warm-up length from their model_config.
        return super()._model_config_auto_includes | {"random_warmup_steps": self.random_warmup_steps}


class SparseSAC(SAC):
    """RLlib's SAC algorithm; its uniform episode replay sampled by ``FastEpisodeReplayBuffer``."""

    @classmethod
    @override(SAC)
    def get_default_config(cls) -> SparseSACConfig:
        return SparseSACConfig()

    @override(SAC)
    def _create_local_replay_buffer_if_necessary(self, config):
        buffer_config = config.get("replay_buffer_config") or {}
        if buffer_config.get("type") == "EpisodeReplayBuffer":
            # A copy: the algorithm's own config (and so its checkpoints) keeps RLlib's name.
            config = {"replay_buffer_config": {**buffer_config, "type": FAST_EPISODE_REPLAY_BUFFER}}
        return super()._create_local_replay_buffer_if_necessary(config)
