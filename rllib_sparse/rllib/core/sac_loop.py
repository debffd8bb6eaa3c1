"""RLlib's SAC training loop with the settings the paper's SimBa code uses, shared by SAC and DDPG.

RLlib's SAC algorithm (its sampling, replay buffer, learner updates, target updates, checkpoints) is
used as is. What this adds, for every algorithm trained on that loop:

- ``weight_decay``: AdamW (decoupled decay) for the networks (the paper: 1e-2); 0 (the default) leaves
  the algorithm's own optimizers.
- ``random_warmup_steps``: uniform random actions for the first N env steps (the paper: 5,000),
  counted by RLlib's global env-step counter, which a restored checkpoint carries, so a resumed trial
  does not explore randomly again (the modules act on it: ``core.module.random_warmup_actions``).
- Replay sampling: where the config names RLlib's uniform ``EpisodeReplayBuffer``, the loop builds
  ``rllib_sparse.rllib.core.replay.FastEpisodeReplayBuffer`` — RLlib's buffer, the same transitions from
  the same random draws, without slicing an episode per transition (half the time per sample).
"""

from __future__ import annotations

from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.algorithms.sac import SAC, SACConfig
from ray.rllib.utils.annotations import override

from rllib_sparse.rllib.core.replay import FAST_EPISODE_REPLAY_BUFFER


class SACLoopConfig(SACConfig):
    """``SACConfig`` plus the paper's AdamW and random warm-up (module docstring)."""

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or SACLoop)
        self.weight_decay = 0.0
        self.random_warmup_steps = 0

    @override(SACConfig)
    def training(self, *, weight_decay=NotProvided, random_warmup_steps=NotProvided, **kwargs) -> SACLoopConfig:
        """RLlib's SAC settings, plus:

        Args:
            weight_decay: AdamW's decoupled weight decay for the networks (0: the algorithm's Adam).
            random_warmup_steps: env steps of uniform random actions before the policy acts.
        """
        super().training(**kwargs)
        if weight_decay is not NotProvided:
            self.weight_decay = weight_decay
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


class SACLoop(SAC):
    """RLlib's SAC algorithm; its uniform episode replay sampled by ``FastEpisodeReplayBuffer``."""

    @classmethod
    @override(SAC)
    def get_default_config(cls) -> SACLoopConfig:
        return SACLoopConfig()

    @override(SAC)
    def _create_local_replay_buffer_if_necessary(self, config):
        buffer_config = config.get("replay_buffer_config") or {}
        if buffer_config.get("type") == "EpisodeReplayBuffer":
            # A copy: the algorithm's own config (and so its checkpoints) keeps RLlib's name.
            config = {"replay_buffer_config": {**buffer_config, "type": FAST_EPISODE_REPLAY_BUFFER}}
        return super()._create_local_replay_buffer_if_necessary(config)
