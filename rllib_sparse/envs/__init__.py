"""Environments with the preprocessing the paper's settings use (gymnasium and ale-py; no Ray import).

Each family registers itself in the env-family registry (``rllib_sparse.envs.registry``) on import.
"""

from rllib_sparse.envs.atari import AtariOptions, atari_env_ids, atari_game, is_atari_id, make_atari, make_atari_vector  # noqa: I001 - registers the Atari family
from rllib_sparse.envs.dmc import DmcOptions, dmc_env_ids, dmc_task, is_dmc_id, make_dmc  # noqa: I001 - registers the DMC family
from rllib_sparse.envs.finite import NonFiniteObservationError, check_observations
from rllib_sparse.envs.registry import (
    EnvFamily,
    env_families,
    env_family,
    env_spaces,
    make_env,
    register_env_family,
    unknown_env_message,
)

__all__ = ["AtariOptions", "DmcOptions", "EnvFamily", "NonFiniteObservationError", "atari_env_ids", "atari_game",
           "check_observations", "dmc_env_ids", "dmc_task", "env_families", "env_family", "env_spaces", "is_atari_id",
           "is_dmc_id", "make_atari", "make_env", "make_atari_vector", "make_dmc", "register_env_family",
           "unknown_env_message"]
