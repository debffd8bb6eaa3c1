"""RLlib glue (new API stack): sparse RL modules, their Catalogs and Learners, and the config helpers.

Which module, Catalog and Learner each algorithm uses is the algorithm table's business
(``rllib_sparse.algorithms``); ``with_sparse_model`` installs them.
"""

from rllib_sparse.rllib.catalogs import MODEL_CONFIG_KEY, parse_model_config
from rllib_sparse.rllib.diagnostics import learner_diagnostics, with_diagnostics
from rllib_sparse.rllib.env_families import register_atari, register_family_env, with_atari, with_env_family
from rllib_sparse.rllib.learners import (
    SparseAPPOTorchLearner,
    SparseDQNTorchLearner,
    SparseIMPALATorchLearner,
    SparsePPOTorchLearner,
    SparseSACTorchLearner,
    with_fast_learner,
)
from rllib_sparse.rllib.modules import (
    SparseAPPOTorchRLModule,
    SparseDQNTorchRLModule,
    SparsePPOTorchRLModule,
    SparseSACTorchRLModule,
)
from rllib_sparse.rllib.sparse_model import (
    algorithm_config,
    env_spaces,
    sparse_module_spec,
    with_sparse_model,
)

__all__ = [
    "MODEL_CONFIG_KEY",
    "SparseAPPOTorchLearner",
    "SparseAPPOTorchRLModule",
    "SparseDQNTorchLearner",
    "SparseDQNTorchRLModule",
    "SparseIMPALATorchLearner",
    "SparsePPOTorchLearner",
    "SparsePPOTorchRLModule",
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
