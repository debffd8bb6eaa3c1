"""Putting a sparse model into an ordinary RLlib config, validated on the driver."""

from __future__ import annotations

import dataclasses
import difflib
from importlib import import_module
from typing import Any

import gymnasium as gym
import torch
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from rllib_sparse.envs.atari import is_atari_id
from rllib_sparse.networks import SparseModelConfig
from rllib_sparse.networks.registry import build_network
from rllib_sparse.rllib.atari import register_atari
from rllib_sparse.rllib.catalogs import MODEL_CONFIG_KEY, parse_model_config
from rllib_sparse.rllib.learners import LEARNER_CLASSES
from rllib_sparse.rllib.modules import MODULE_CLASSES, check_observation_space


def module_class_for(algorithm: str) -> type:
    try:
        return MODULE_CLASSES[algorithm.upper()]
    except (KeyError, AttributeError):
        raise ValueError(f"algorithm={algorithm!r} is not supported; allowed: {', '.join(MODULE_CLASSES)}") from None


def sparse_module_spec(algorithm: str, model: str = "simba", **fields: Any) -> RLModuleSpec:
    """An ``RLModuleSpec`` for ``config.rl_module(rl_module_spec=...)`` of an ordinary RLlib config.

    ``fields`` are those of :class:`SparseModelConfig` (width, depth, sparsity, actor, critic,
    allocation, seed, keep_first_dense, keep_last_dense, rescale). Validated here, before Ray starts.
    """
    module_class = module_class_for(algorithm)
    config = SparseModelConfig.parse({"model": model, **fields})
    return RLModuleSpec(module_class=module_class, model_config={MODEL_CONFIG_KEY: config.model_dump()})


def check_spaces(config: SparseModelConfig, observation_space, action_space) -> None:
    """Check a sparse config against an env's spaces on the driver, before any Ray actor starts.

    Besides the observation rank, every network is built once on the ``meta`` device (no memory, no
    compute), so a network's own constraints (e.g. the smallest image a CNN takes) surface here too.
    RLlib reports a module that fails inside a remote env runner only as an ``IndexError``.
    """
    check_observation_space(config, observation_space)
    if not isinstance(action_space, (gym.spaces.Box, gym.spaces.Discrete)):
        raise ValueError(f"action space {action_space} is not supported; allowed: Box or Discrete")
    extra_dim = int(action_space.shape[0]) if isinstance(action_space, gym.spaces.Box) else 0
    with torch.device("meta"):
        for role in ("actor", "critic"):
            spec = config.network(role)
            build_network(spec.model, tuple(observation_space.shape), spec.width, spec.depth,
                          extra_dim if role == "critic" else 0)


def env_spaces(config: AlgorithmConfig):
    """(observation_space, action_space) of the config's env, made once on the driver; None if unset."""
    if config.observation_space is not None and config.action_space is not None:
        return config.observation_space, config.action_space
    if config.env is None:
        return None
    from ray.rllib.algorithms.algorithm import Algorithm
    from ray.rllib.env.env_context import EnvContext

    # RLlib's own resolution of an env id (gymnasium id, ``tune.register_env`` name or class).
    try:
        _, creator = Algorithm._get_env_id_and_creator(config.env, config)
        env = creator(EnvContext(dict(config.env_config), worker_index=0))
    except Exception as error:  # RLlib's EnvError, gymnasium's errors: many lines, many types
        if isinstance(config.env, str) and config.env not in gym.registry and "." not in config.env:
            close = difflib.get_close_matches(config.env, list(gym.registry), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"env={config.env!r} is not a known env{hint}; allowed: a gymnasium id "
                             "(e.g. CartPole-v1), an Atari id (`rllib-sparse envs`), or a name registered "
                             "with ray.tune.register_env") from None
        first = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
        raise ValueError(f"env={config.env!r} cannot be created: {first}") from None
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()


def with_sparse_model(config: AlgorithmConfig, model: str = "simba", **fields: Any) -> AlgorithmConfig:
    """Put a sparse model into an ordinary RLlib ``AlgorithmConfig`` and check it against the env.

    ``fields`` are those of :class:`SparseModelConfig`. Everything is validated here, on the driver,
    so a bad value fails with a one-line ``ValueError`` before any Ray actor starts. If the config
    still uses RLlib's default Learner, it is swapped for the same Learner on fused Adam
    (``rllib_sparse.rllib.learners``); a custom Learner is left alone.
    """
    spec = sparse_module_spec(config.algo_class.__name__, model, **fields)
    if is_atari_id(config.env):
        register_atari(config.env)  # a plain ``.environment("ALE/<Game>-v5")`` gets our preprocessing
    spaces = env_spaces(config)
    if spaces is not None:
        algorithm = config.algo_class.__name__
        if algorithm in DISCRETE_ACTIONS_ONLY and not isinstance(spaces[1], gym.spaces.Discrete):
            raise ValueError(f"{algorithm} on env={config.env!r}: the action space {spaces[1]} is not supported; "
                             f"{algorithm} needs Discrete actions (use SAC or PPO for continuous ones)")
        check_spaces(parse_model_config(spec.model_config), *spaces)
    # The fields go into the config's own model_config (kept keys intact), not into the spec, so a Tune
    # grid over ``model_config["sparse"]`` is not overridden by a fixed spec.
    user_model_config = config._model_config  # what the user set, without the algorithm's auto-includes
    if dataclasses.is_dataclass(user_model_config):
        user_model_config = dataclasses.asdict(user_model_config)
    model_config = {**(user_model_config or {}), **spec.model_config}
    config = config.rl_module(rl_module_spec=RLModuleSpec(module_class=spec.module_class), model_config=model_config)
    fused = LEARNER_CLASSES.get(config.learner_class)
    return config.learners(learner_class=fused) if fused is not None else config


#: Algorithms whose RLlib implementation only takes Discrete action spaces.
DISCRETE_ACTIONS_ONLY = frozenset({"DQN"})

#: Where each supported algorithm's config class lives.
_CONFIG_CLASSES = {
    "PPO": ("ray.rllib.algorithms.ppo", "PPOConfig"),
    "APPO": ("ray.rllib.algorithms.appo", "APPOConfig"),
    "IMPALA": ("ray.rllib.algorithms.impala", "IMPALAConfig"),
    "SAC": ("ray.rllib.algorithms.sac", "SACConfig"),
    "DQN": ("ray.rllib.algorithms.dqn", "DQNConfig"),
}


def algorithm_config(algorithm: str) -> AlgorithmConfig:
    """A fresh RLlib config object for a supported algorithm name."""
    module_class_for(algorithm)  # the one-line error for an unknown name
    module_name, class_name = _CONFIG_CLASSES[algorithm.upper()]
    return getattr(import_module(module_name), class_name)()


def planned_module(config: AlgorithmConfig, spaces=None):
    """The config's sparse RL module built on the ``meta`` device: shapes and densities, no memory."""
    from ray.rllib.core import DEFAULT_MODULE_ID

    spaces = spaces or env_spaces(config)
    spec = config.get_multi_rl_module_spec(spaces={DEFAULT_MODULE_ID: spaces}, inference_only=False)
    with torch.device("meta"):
        return spec.build()[DEFAULT_MODULE_ID]
