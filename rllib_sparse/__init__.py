"""rllib-sparse: static network sparsity (one-shot random pruning) for deep RL on Ray RLlib.

The pure-torch layers (``rllib_sparse.sparsity``, ``rllib_sparse.networks``) import no Ray; the RLlib
names below are loaded on first use, so ``import rllib_sparse.sparsity`` stays light.
"""

from __future__ import annotations

import os
from importlib import import_module

# MuJoCo (DeepMind Control, gymnasium's MuJoCo tasks) needs no rendering context for state observations;
# without a choice, importing it probes GLFW/X11 and warns on every headless machine and Ray worker.
# A user who renders pixels sets MUJOCO_GL=egl (or osmesa) before importing us; that choice is kept.
os.environ.setdefault("MUJOCO_GL", "disable")

__version__ = "0.1.0"

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
    # environments (gymnasium, ale-py) and the env-family registry
    "make_atari": "rllib_sparse.envs",
    "make_atari_vector": "rllib_sparse.envs",
    "make_dmc": "rllib_sparse.envs",
    "EnvFamily": "rllib_sparse.envs",
    "register_env_family": "rllib_sparse.envs",
    # the algorithm table (no Ray import)
    "AlgorithmRow": "rllib_sparse.algorithms",
    "register_algorithm": "rllib_sparse.algorithms",
    # the trial-runner seam of sweeps (a trainer that is not RLlib)
    "TrialRunner": "rllib_sparse.sweep.trial",
    "register_trial_runner": "rllib_sparse.sweep.trial",
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

__all__ = sorted(_PUBLIC) + ["__version__"]


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'rllib_sparse' has no attribute {name!r}")
