"""DDPG on RLlib's new API stack (which ships none): RLlib's SAC training loop with DDPG's networks and losses.

``DDPG`` is RLlib's ``SAC`` algorithm class (through the shared SAC loop, ``core.sac_loop``: sampling,
replay buffer, learner updates, Polyak target updates, checkpoints, ``weight_decay``,
``random_warmup_steps``) with a different default config; ``DDPGConfig`` adds the three noise scales
and makes the module, catalog and learner DDPG's. Everything RLlib's ``SACConfig`` takes (``tau``,
``gamma``, ``actor_lr``/``critic_lr``, replay, ``training_intensity``, ...) means the same here; the
temperature settings are unused.
"""

from __future__ import annotations

from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.annotations import override

from rllib_sparse.rllib.core.sac_loop import SACLoop, SACLoopConfig


class DDPGConfig(SACLoopConfig):
    """DDPG: a deterministic tanh actor and one critic, Gaussian exploration and target-policy noise.

    .. testcode::

        from rllib_sparse.rllib import with_sparse_model
        from rllib_sparse.rllib.ddpg import DDPGConfig

        config = DDPGConfig().environment("Pendulum-v1").training(exploration_noise_std=0.2)
        config = with_sparse_model(config, "simba", width=256, sparsity=0.8)
        assert config.get_default_learner_class().__name__ == "SparseDDPGTorchLearner"
    """

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or DDPG)
        self.twin_q = False
        self.exploration_noise_std = 0.1
        self.target_noise_std = 0.1
        self.actor_noise_std = 0.1

    @override(SACLoopConfig)
    def training(self, *, exploration_noise_std=NotProvided, target_noise_std=NotProvided,
                 actor_noise_std=NotProvided, **kwargs) -> DDPGConfig:
        """The SAC loop's settings (``SACLoopConfig.training``), plus:

        Args:
            exploration_noise_std: std of the Gaussian noise added to actions while acting.
            target_noise_std: std of the (unclipped) noise on the next action in the critic's target.
            actor_noise_std: std of the noise on the actor's action inside the actor loss (the paper's code).
        """
        super().training(**kwargs)
        for name, value in (("exploration_noise_std", exploration_noise_std), ("target_noise_std", target_noise_std),
                            ("actor_noise_std", actor_noise_std)):
            if value is not NotProvided:
                setattr(self, name, value)
        return self

    @override(SACLoopConfig)
    def validate(self) -> None:
        super().validate()
        if self.twin_q:
            self._value_error("twin_q=True is not DDPG (one critic); allowed: false")
        for name in ("exploration_noise_std", "target_noise_std", "actor_noise_std"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                self._value_error(f"{name}={value!r} is invalid; allowed: a number >= 0")

    @override(SACLoopConfig)
    def get_default_rl_module_spec(self) -> RLModuleSpec:
        from rllib_sparse.rllib.ddpg.module import SparseDDPGCatalog, SparseDDPGTorchRLModule

        return RLModuleSpec(module_class=SparseDDPGTorchRLModule, catalog_class=SparseDDPGCatalog)

    @override(SACLoopConfig)
    def get_default_learner_class(self):
        from rllib_sparse.rllib.ddpg.learner import SparseDDPGTorchLearner

        return SparseDDPGTorchLearner

    @property
    @override(SACLoopConfig)
    def _model_config_auto_includes(self):
        return super()._model_config_auto_includes | {
            "exploration_noise_std": self.exploration_noise_std, "target_noise_std": self.target_noise_std,
            "actor_noise_std": self.actor_noise_std}


class DDPG(SACLoop):
    """RLlib's SAC algorithm (the shared SAC loop) under DDPG's name and config."""

    @classmethod
    @override(SACLoop)
    def get_default_config(cls) -> DDPGConfig:
        return DDPGConfig()
