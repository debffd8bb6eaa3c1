"""SAC with the settings the paper's SimBa code uses that RLlib's SACConfig cannot express.

RLlib's SAC (its training loop, replay buffer, losses and target updates) is used as is, through the
loop that SAC and DDPG share (``rllib_sparse.rllib.core.sac_loop``: ``weight_decay``,
``random_warmup_steps``, fast uniform replay sampling). What SAC adds:

- ``weight_decay`` > 0 puts actor and critics on AdamW; the temperature keeps plain Adam.
- ``target_entropy_scale``: target entropy = scale × |A| (the paper: −0.5; RLlib's ``"auto"`` is −1).
- The policy's log-std and evaluation action as the authors parametrise them (``distribution``).
"""

from __future__ import annotations

from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.annotations import override

from rllib_sparse.rllib.core.sac_loop import SACLoop, SACLoopConfig


class SparseSACConfig(SACLoopConfig):
    """``SACConfig`` with sparse networks, plus the paper's optimizer, target entropy and warm-up.

    .. testcode::

        from rllib_sparse.rllib import with_sparse_model
        from rllib_sparse.rllib.sac import SparseSACConfig

        config = (SparseSACConfig().environment("Pendulum-v1")
                  .training(weight_decay=0.01, target_entropy_scale=-0.5, random_warmup_steps=5000))
        config = with_sparse_model(config, "simba", actor={"width": 128}, critic={"width": 512}, sparsity=0.8)
        assert config.get_default_learner_class().__name__ == "SparseSACTorchLearner"
    """

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or SparseSAC)
        self.target_entropy_scale: float | None = None

    @override(SACLoopConfig)
    def training(self, *, target_entropy_scale=NotProvided, **kwargs) -> SparseSACConfig:
        """The SAC loop's settings (``SACLoopConfig.training``), plus:

        Args:
            target_entropy_scale: target entropy = this × |A|; overrides ``target_entropy``.
        """
        super().training(**kwargs)
        if target_entropy_scale is not NotProvided:
            self.target_entropy_scale = target_entropy_scale
        return self

    @override(SACLoopConfig)
    def get_default_rl_module_spec(self) -> RLModuleSpec:
        from rllib_sparse.rllib.sac.module import SparseSACCatalog, SparseSACTorchRLModule

        return RLModuleSpec(module_class=SparseSACTorchRLModule, catalog_class=SparseSACCatalog)

    @override(SACLoopConfig)
    def get_default_learner_class(self):
        from rllib_sparse.rllib.sac.learner import SparseSACTorchLearner

        return SparseSACTorchLearner


class SparseSAC(SACLoop):
    """RLlib's SAC algorithm on the shared SAC loop, with ``SparseSACConfig`` as its default config."""

    @classmethod
    @override(SACLoop)
    def get_default_config(cls) -> SparseSACConfig:
        return SparseSACConfig()
