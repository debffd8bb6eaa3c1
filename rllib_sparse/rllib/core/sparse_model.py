"""Putting a sparse model into an ordinary RLlib config, validated on the driver.

Which RL module, Catalog and Learner an algorithm uses is its sparse config class's decision
(``get_default_rl_module_spec``, ``get_default_learner_class``), the class its row of the algorithm
table names (``rllib_sparse.algorithms``), resolved here on first use. A plain RLlib config (RLlib's
``PPOConfig``) gets the same classes from its algorithm's sparse config. Env ids that an env family
claims are finished by ``with_env_family``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import torch
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from rllib_sparse.algorithms import AlgorithmRow, algorithm_names, get_algorithm, resolve, rllib_algorithm
from rllib_sparse.envs import env_family, unknown_env_message
from rllib_sparse.networks import SparseModelConfig
from rllib_sparse.networks.registry import build_network
from rllib_sparse.rllib.core.env_families import with_env_family
from rllib_sparse.rllib.core.model_config import MODEL_CONFIG_KEY
from rllib_sparse.rllib.core.module import check_observation_space


def _fields(model: str | SparseModelConfig, fields: dict[str, Any]) -> SparseModelConfig:
    """One typed config from either a parsed one (used as it is) or a model name plus fields (parsed
    once, here)."""
    if isinstance(model, SparseModelConfig):
        return SparseModelConfig.parse({**model.model_dump(), **fields}) if fields else model
    return SparseModelConfig.parse({"model": model, **fields})


def _row(algorithm: str | AlgorithmRow) -> AlgorithmRow:
    return algorithm if isinstance(algorithm, AlgorithmRow) else get_algorithm(algorithm)


def sparse_module_spec(algorithm: str | AlgorithmRow, model: str | SparseModelConfig = "simba",
                       **fields: Any) -> RLModuleSpec:
    """An ``RLModuleSpec`` for ``config.rl_module(rl_module_spec=...)`` of an ordinary RLlib config.

    ``model`` is a registered model name (then ``fields`` are the other :class:`SparseModelConfig`
    fields: width, depth, sparsity, actor, critic, allocation, seed, keep_first_dense, keep_last_dense,
    rescale) or an already parsed ``SparseModelConfig``. Validated here, before Ray starts; the config
    becomes a plain dict only here, at RLlib's ``model_config`` boundary.
    """
    return _module_spec(algorithm_config(algorithm), _fields(model, fields))


def _module_spec(sparse_config: AlgorithmConfig, model: SparseModelConfig) -> RLModuleSpec:
    """The module and Catalog the sparse config picks, with ``model`` as RLlib's ``model_config`` dict."""
    classes = sparse_config.get_default_rl_module_spec()
    return RLModuleSpec(module_class=classes.module_class, catalog_class=classes.catalog_class,
                        model_config={MODEL_CONFIG_KEY: model.model_dump()})


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
            raise ValueError(unknown_env_message(
                config.env, "a gymnasium id (e.g. CartPole-v1), an Atari id (`rllib-sparse envs`), or a name "
                            "registered with ray.tune.register_env")) from None
        first = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
        raise ValueError(f"env={config.env!r} cannot be created: {first}") from None
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()


def algorithm_row(config: AlgorithmConfig) -> AlgorithmRow:
    """The table row of an RLlib config, by the name of its algorithm class — or of the nearest base
    class that has a row (our ``SparseSAC`` is RLlib's ``SAC``)."""
    names = set(algorithm_names())
    for cls in config.algo_class.__mro__:
        if cls.__name__.upper() in names:
            return get_algorithm(cls.__name__)
    return get_algorithm(config.algo_class.__name__)  # the one-line error naming the allowed ones


def with_sparse_model(config: AlgorithmConfig, model: str | SparseModelConfig = "simba", *,
                      algorithm: str | AlgorithmRow | None = None, **fields: Any) -> AlgorithmConfig:
    """Put a sparse model into an ordinary RLlib ``AlgorithmConfig`` and check it against the env.

    ``model`` is a model name plus the other :class:`SparseModelConfig` ``fields``, or a parsed
    ``SparseModelConfig``. Everything is validated here, on the driver, so a bad value fails with a
    one-line ``ValueError`` before any Ray actor starts. The RL module and Catalog are the ones the
    algorithm's sparse config picks; if the config still uses its default Learner, that is swapped for
    the sparse config's (RLlib's, with the shared sparse Learner stack: ``core.learner``), and a custom
    Learner is left alone. ``algorithm`` names the table row (or is the row) when it is not the config's
    own algorithm (a row registered under another name for the same RLlib classes).
    """
    row = _row(algorithm) if algorithm is not None else algorithm_row(config)
    sparse = _fields(model, fields)
    sparse_config = algorithm_config(row)  # the config class that picks the module, Catalog and Learner
    spec = _module_spec(sparse_config, sparse)
    if env_family(config.env) is not None:
        config = with_env_family(config)  # a plain ``.environment("ALE/<Game>-v5")`` gets our preprocessing
    spaces = env_spaces(config)
    if spaces is not None:
        if not row.takes(spaces[1]):
            raise ValueError(f"{row.name} on env={config.env!r}: the action space {spaces[1]} is not supported; "
                             f"{row.name} needs {' or '.join(row.action_spaces)} actions")
        check_spaces(sparse, *spaces)
    # The fields go into the config's own model_config (kept keys intact), not into the spec, so a Tune
    # grid over ``model_config["sparse"]`` is not overridden by a fixed spec.
    user_model_config = config._model_config  # what the user set, without the algorithm's auto-includes
    if dataclasses.is_dataclass(user_model_config):
        user_model_config = dataclasses.asdict(user_model_config)
    model_config = {**(user_model_config or {}), **spec.model_config}
    config = config.rl_module(
        rl_module_spec=RLModuleSpec(module_class=spec.module_class, catalog_class=spec.catalog_class),
        model_config=model_config)
    if config.learner_class is config.get_default_learner_class():  # not a custom Learner
        config = config.learners(learner_class=sparse_config.get_default_learner_class())
    return config


def algorithm_config(algorithm: str | AlgorithmRow) -> AlgorithmConfig:
    """A fresh config object of an algorithm of the table (its row's ``config_class``)."""
    row = algorithm if isinstance(algorithm, AlgorithmRow) else rllib_algorithm(algorithm)
    if not row.is_rllib:
        rllib_algorithm(row.name)  # the one-line refusal naming those RLlib trains
    return resolve(row.config_class)()


def planned_module(config: AlgorithmConfig, spaces=None):
    """The config's sparse RL module built on the ``meta`` device: shapes and densities, no memory."""
    from ray.rllib.core import DEFAULT_MODULE_ID

    spaces = spaces or env_spaces(config)
    spec = config.get_multi_rl_module_spec(spaces={DEFAULT_MODULE_ID: spaces}, inference_only=False)
    with torch.device("meta"):
        return spec.build()[DEFAULT_MODULE_ID]
