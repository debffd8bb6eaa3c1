"""RLlib's PPO, APPO and IMPALA configs, each choosing the sparse module, Catalog and Learner.

Everything else (settings, validation, the algorithms) is RLlib's; ``with_sparse_model`` then sets the
networks' widths, depths and sparsities.
"""

from __future__ import annotations

from ray.rllib.algorithms.appo import APPOConfig
from ray.rllib.algorithms.impala import IMPALAConfig
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.annotations import override


class SparsePPOConfig(PPOConfig):
    """``PPOConfig`` with sparse actor and critic networks.

    .. testcode::

        from rllib_sparse.rllib import with_sparse_model
        from rllib_sparse.rllib.ppo import SparsePPOConfig

        config = with_sparse_model(SparsePPOConfig().environment("CartPole-v1"), "simba", width=64,
                                   sparsity=0.5)
        assert config.get_default_learner_class().__name__ == "SparsePPOTorchLearner"
    """

    @override(PPOConfig)
    def get_default_rl_module_spec(self) -> RLModuleSpec:
        from rllib_sparse.rllib.ppo.module import SparsePPOCatalog, SparsePPOTorchRLModule

        return RLModuleSpec(module_class=SparsePPOTorchRLModule, catalog_class=SparsePPOCatalog)

    @override(PPOConfig)
    def get_default_learner_class(self):
        from rllib_sparse.rllib.ppo.learner import SparsePPOTorchLearner

        return SparsePPOTorchLearner


class SparseAPPOConfig(APPOConfig):
    """``APPOConfig`` with sparse networks (PPO's, with a target policy).

    .. testcode::

        from rllib_sparse.rllib import with_sparse_model
        from rllib_sparse.rllib.ppo import SparseAPPOConfig

        config = with_sparse_model(SparseAPPOConfig().environment("CartPole-v1"), sparsity=0.9)
        assert config.get_default_rl_module_spec().module_class.__name__ == "SparseAPPOTorchRLModule"
    """

    @override(APPOConfig)
    def get_default_rl_module_spec(self) -> RLModuleSpec:
        from rllib_sparse.rllib.ppo.module import SparseAPPOTorchRLModule, SparsePPOCatalog

        return RLModuleSpec(module_class=SparseAPPOTorchRLModule, catalog_class=SparsePPOCatalog)

    @override(APPOConfig)
    def get_default_learner_class(self):
        from rllib_sparse.rllib.ppo.learner import SparseAPPOTorchLearner

        return SparseAPPOTorchLearner


class SparseIMPALAConfig(IMPALAConfig):
    """``IMPALAConfig`` with sparse networks (PPO's module, RLlib's V-trace Learner).

    .. testcode::

        from rllib_sparse.rllib import with_sparse_model
        from rllib_sparse.rllib.ppo import SparseIMPALAConfig

        config = with_sparse_model(SparseIMPALAConfig().environment("CartPole-v1"), sparsity=0.9)
        assert config.get_default_learner_class().__name__ == "SparseIMPALATorchLearner"
    """

    @override(IMPALAConfig)
    def get_default_rl_module_spec(self) -> RLModuleSpec:
        from rllib_sparse.rllib.ppo.module import SparsePPOCatalog, SparsePPOTorchRLModule

        return RLModuleSpec(module_class=SparsePPOTorchRLModule, catalog_class=SparsePPOCatalog)

    @override(IMPALAConfig)
    def get_default_learner_class(self):
        from rllib_sparse.rllib.ppo.learner import SparseIMPALATorchLearner

        return SparseIMPALATorchLearner
