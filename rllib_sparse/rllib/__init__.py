"""RLlib glue (new API stack): one folder per algorithm family, and what they share in ``core``.

``ppo`` (PPO, APPO, IMPALA), ``sac``, ``dqn`` and ``ddpg`` each hold a config class that picks the
family's sparse RL module, Catalog and Learner; the algorithm table (``rllib_sparse.algorithms``)
names that config class. ``with_sparse_model`` puts a sparse model into any of them, or into RLlib's
own config of the same algorithm.
"""

from rllib_sparse.rllib.core.diagnostics import learner_diagnostics, with_diagnostics
from rllib_sparse.rllib.core.env_families import register_atari, register_family_env, with_atari, with_env_family
from rllib_sparse.rllib.core.learner import with_fast_learner
from rllib_sparse.rllib.core.model_config import MODEL_CONFIG_KEY, parse_model_config
from rllib_sparse.rllib.core.sparse_model import algorithm_config, env_spaces, sparse_module_spec, with_sparse_model
from rllib_sparse.rllib.ddpg import DDPGConfig
from rllib_sparse.rllib.dqn import SparseDQNConfig
from rllib_sparse.rllib.dqn.learner import SparseDQNTorchLearner
from rllib_sparse.rllib.dqn.module import SparseDQNTorchRLModule
from rllib_sparse.rllib.ppo import SparseAPPOConfig, SparseIMPALAConfig, SparsePPOConfig
from rllib_sparse.rllib.ppo.learner import SparseAPPOTorchLearner, SparseIMPALATorchLearner, SparsePPOTorchLearner
from rllib_sparse.rllib.ppo.module import SparseAPPOTorchRLModule, SparsePPOTorchRLModule
from rllib_sparse.rllib.sac import SparseSACConfig
from rllib_sparse.rllib.sac.learner import SparseSACTorchLearner
from rllib_sparse.rllib.sac.module import SparseSACTorchRLModule

__all__ = [
    "MODEL_CONFIG_KEY",
    "DDPGConfig",
    "SparseAPPOConfig",
    "SparseAPPOTorchLearner",
    "SparseAPPOTorchRLModule",
    "SparseDQNConfig",
    "SparseDQNTorchLearner",
    "SparseDQNTorchRLModule",
    "SparseIMPALAConfig",
    "SparseIMPALATorchLearner",
    "SparsePPOConfig",
    "SparsePPOTorchLearner",
    "SparsePPOTorchRLModule",
    "SparseSACConfig",
    "SparseSACTorchLearner",
    "SparseSACTorchRLModule",
    "algorithm_config",
    "env_spaces",
    "learner_diagnostics",
    "parse_model_config",
    "register_atari",
    "register_family_env",
    "sparse_module_spec",
    "with_atari",
    "with_diagnostics",
    "with_env_family",
    "with_fast_learner",
    "with_sparse_model",
]
