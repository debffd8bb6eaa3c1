"""rllib-sparse: static network sparsity (one-shot random pruning) for deep RL on Ray RLlib.

The pure-torch layers (``rllib_sparse.sparsity``, ``rllib_sparse.networks``) import no Ray; the names
below are loaded on first use (``__getattr__``), so ``import rllib_sparse`` and ``import
rllib_sparse.sparsity`` stay light and need none of the simulator extras (``[atari]``, ``[dmc]``,
``[mujoco]``). ``dir(rllib_sparse)`` lists them, and type checkers see them through the
``TYPE_CHECKING`` imports.
"""

from __future__ import annotations

import os
from importlib import import_module
from typing import TYPE_CHECKING

# MuJoCo (DeepMind Control, gymnasium's MuJoCo tasks) needs no rendering context for state observations;
# without a choice, importing it probes GLFW/X11 and warns on every headless machine and Ray worker.
# A user who renders pixels sets MUJOCO_GL=egl (or osmesa) before importing us; that choice is kept.
os.environ.setdefault("MUJOCO_GL", "disable")

# The package's version, written here only: pyproject.toml reads it ([tool.setuptools.dynamic]).
__version__ = "0.1.0"

#: Public name -> the module that defines it (imported on first use).
_PUBLIC = {
    # sparsity engine (pure torch)
    "sparsify": "rllib_sparse.sparsity",
    "sparsity_report": "rllib_sparse.sparsity",
    "max_masked_magnitude": "rllib_sparse.sparsity",
    "erdos_renyi_densities": "rllib_sparse.sparsity",
    "uniform_densities": "rllib_sparse.sparsity",
    "SparseLinear": "rllib_sparse.sparsity",
    "SparseConv2d": "rllib_sparse.sparsity",
    "SparsityReport": "rllib_sparse.sparsity",
    # networks and the model registry (pure torch)
    "SparseModelConfig": "rllib_sparse.networks",
    "register_model": "rllib_sparse.networks",
    "registered_models": "rllib_sparse.networks",
    "build_network": "rllib_sparse.networks",
    # environments (gymnasium; the simulators are extras) and the env-family registry
    "make_atari": "rllib_sparse.envs",
    "make_atari_vector": "rllib_sparse.envs",
    "make_dmc": "rllib_sparse.envs",
    "EnvFamily": "rllib_sparse.envs",
    "register_env_family": "rllib_sparse.envs",
    # streaming RL (pure torch): Stream AC(lambda) with ObGD, one transition at a time
    "StreamAC": "rllib_sparse.streaming",
    "StreamTrainer": "rllib_sparse.streaming",
    # the algorithm table (no Ray import)
    "AlgorithmRow": "rllib_sparse.algorithms",
    "register_algorithm": "rllib_sparse.algorithms",
    # the trial-runner seam of sweeps (a trainer that is not RLlib; its algorithm row names it)
    "PlannedTrial": "rllib_sparse.sweep.trial",
    "PlannedCounts": "rllib_sparse.sweep.trial",
    "TrialRunner": "rllib_sparse.sweep.trial",
    # RLlib glue
    "with_sparse_model": "rllib_sparse.rllib",
    "with_atari": "rllib_sparse.rllib",
    "register_atari": "rllib_sparse.rllib",
    "with_env_family": "rllib_sparse.rllib",
    "sparse_module_spec": "rllib_sparse.rllib",
    "with_diagnostics": "rllib_sparse.rllib",
    "learner_diagnostics": "rllib_sparse.rllib",
    "with_fast_learner": "rllib_sparse.rllib",
    "SparseSACConfig": "rllib_sparse.rllib.sac",
    "DDPGConfig": "rllib_sparse.rllib.ddpg",
}

# A literal list, as type checkers read it; tests/test_packaging.py checks it against _PUBLIC.
__all__ = [
    "AlgorithmRow",
    "DDPGConfig",
    "EnvFamily",
    "PlannedCounts",
    "PlannedTrial",
    "SparseConv2d",
    "SparseLinear",
    "SparseModelConfig",
    "SparseSACConfig",
    "SparsityReport",
    "StreamAC",
    "StreamTrainer",
    "TrialRunner",
    "__version__",
    "build_network",
    "erdos_renyi_densities",
    "learner_diagnostics",
    "make_atari",
    "make_atari_vector",
    "make_dmc",
    "max_masked_magnitude",
    "register_algorithm",
    "register_atari",
    "register_env_family",
    "register_model",
    "registered_models",
    "sparse_module_spec",
    "sparsify",
    "sparsity_report",
    "uniform_densities",
    "with_atari",
    "with_diagnostics",
    "with_env_family",
    "with_fast_learner",
    "with_sparse_model",
]

if TYPE_CHECKING:  # what the lazy names are, for type checkers and IDEs; nothing is imported at run time
    from rllib_sparse.algorithms import AlgorithmRow, register_algorithm
    from rllib_sparse.envs import EnvFamily, make_atari, make_atari_vector, make_dmc, register_env_family
    from rllib_sparse.networks import SparseModelConfig, build_network, register_model, registered_models
    from rllib_sparse.rllib import (
        learner_diagnostics,
        register_atari,
        sparse_module_spec,
        with_atari,
        with_diagnostics,
        with_env_family,
        with_fast_learner,
        with_sparse_model,
    )
    from rllib_sparse.rllib.ddpg import DDPGConfig
    from rllib_sparse.rllib.sac import SparseSACConfig
    from rllib_sparse.sparsity import (
        SparseConv2d,
        SparseLinear,
        SparsityReport,
        erdos_renyi_densities,
        max_masked_magnitude,
        sparsify,
        sparsity_report,
        uniform_densities,
    )
    from rllib_sparse.streaming import StreamAC, StreamTrainer
    from rllib_sparse.sweep.trial import PlannedCounts, PlannedTrial, TrialRunner


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(import_module(_PUBLIC[name]), name)
        globals()[name] = value  # the next lookup is a plain attribute
        return value
    raise AttributeError(f"module 'rllib_sparse' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
