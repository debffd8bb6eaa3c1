"""RLlib glue (new API stack): sparse RL modules, their Catalogs and Learners, and the config helpers."""

from rllib_sparse.rllib.atari import register_atari, with_atari
from rllib_sparse.rllib.catalogs import MODEL_CONFIG_KEY, parse_model_config
from rllib_sparse.rllib.config import (
    algorithm_config,
    check_spaces,
    env_spaces,
    module_class_for,
    sparse_module_spec,
    with_sparse_model,
)
from rllib_sparse.rllib.diagnostics import learner_diagnostics, with_diagnostics
from rllib_sparse.rllib.modules import (
    MODULE_CLASSES,
    SparseAPPOTorchRLModule,
    SparseDQNTorchRLModule,
    SparsePPOTorchRLModule,
    SparseSACTorchRLModule,
)

__all__ = [
    "MODEL_CONFIG_KEY",
    "MODULE_CLASSES",
    "SparseAPPOTorchRLModule",
    "SparseDQNTorchRLModule",
    "SparsePPOTorchRLModule",
    "SparseSACTorchRLModule",
    "algorithm_config",
    "check_spaces",
    "env_spaces",
    "learner_diagnostics",
    "module_class_for",
    "parse_model_config",
    "register_atari",
    "sparse_module_spec",
    "with_atari",
    "with_diagnostics",
    "with_sparse_model",
]
