"""RLlib's DQN config, choosing the sparse module, Catalog and Learner; everything else is RLlib's."""

from __future__ import annotations

from ray.rllib.algorithms.dqn import DQNConfig
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.annotations import override


class SparseDQNConfig(DQNConfig):
    """``DQNConfig`` with a sparse Q network (the critic).

    .. testcode::

        from rllib_sparse.rllib import with_sparse_model
        from rllib_sparse.rllib.dqn import SparseDQNConfig

        config = with_sparse_model(SparseDQNConfig().environment("CartPole-v1"), "mlp", width=128, sparsity=0.9)
        assert config.get_default_learner_class().__name__ == "SparseDQNTorchLearner"
    """

    @override(DQNConfig)
    def get_default_rl_module_spec(self) -> RLModuleSpec:
        from rllib_sparse.rllib.dqn.module import SparseDQNCatalog, SparseDQNTorchRLModule

        return RLModuleSpec(module_class=SparseDQNTorchRLModule, catalog_class=SparseDQNCatalog)

    @override(DQNConfig)
    def get_default_learner_class(self):
        from rllib_sparse.rllib.dqn.learner import SparseDQNTorchLearner

        return SparseDQNTorchLearner
