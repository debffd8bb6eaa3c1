"""Env families in RLlib: their ids as Tune-registered envs, their options checked, their metrics logged.

RLlib's new stack wraps no env itself. For an env id that a family of the env-family registry claims
(``rllib_sparse.envs.registry``; Atari's ``ALE/<Game>-v5`` first), ``with_env_family`` registers the id
with Tune (so ``config.environment("ALE/Pong-v5")`` works in a plain RLlib config), validates the
``env_config`` against the family's options, steps envs through the family's vectorised env when it
has one, and logs the family's full-episode numbers (Atari: the whole game's unclipped return) from
the episode-end ``info`` next to RLlib's own.

Every env RLlib makes from a family id or a plain gymnasium id has its float observations checked for
NaN and infinities (``rllib_sparse.envs.finite``): a plain id is registered with Tune under its own name
to a creator that is ``gymnasium.make`` plus that check (unless the name is registered with Tune already).
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

import gymnasium as gym
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

from rllib_sparse.envs import check_observations, env_family
from rllib_sparse.envs.atari import atari_env_ids, is_atari_id

_WINDOW = 100  # episodes averaged, as RLlib's own episode metrics


def _create(env_id: str, env_config: dict) -> Any:
    """RLlib calls this per env (no ``num_envs``) or once per runner with ``num_envs`` (vector entry)."""
    family = env_family(env_id)
    options = family.validate_options(env_config, source=f"env_config of {env_id}")
    if "num_envs" in env_config and family.make_vector is not None:
        return check_observations(family.make_vector(env_id, int(env_config["num_envs"]), **options), env_id)
    return check_observations(family.make(env_id, **options), env_id)


def _create_plain(env_id: str, env_config: dict) -> Any:
    """A plain gymnasium id, made as RLlib makes it (``gymnasium.make``), observations checked."""
    options = {k: v for k, v in env_config.items() if k != "num_envs"}
    if "num_envs" in env_config:
        env = gym.make_vec(env_id, int(env_config["num_envs"]), vectorization_mode="vector_entry_point", **options)
    else:
        env = gym.make(env_id, **options)
    return check_observations(env, env_id)


def register_checked_env(env_id: Any) -> bool:
    """Register a plain gymnasium id with Tune, to ``gymnasium.make`` plus the observation check; False
    (nothing done) for a name that is no gymnasium id or that Tune knows already (a user's own env)."""
    from ray import tune
    from ray.tune.registry import ENV_CREATOR, _global_registry

    if not isinstance(env_id, str) or _global_registry.contains(ENV_CREATOR, env_id):
        return False
    module, _, name = env_id.rpartition(":")  # gymnasium's "module:Id": the module registers the id
    if module:
        try:
            importlib.import_module(module)
        except ImportError:
            return False  # RLlib says what is wrong, as for any id it cannot make
    if name not in gym.registry:
        return False
    tune.register_env(env_id, functools.partial(_create_plain, env_id))
    return True


def register_family_env(env_id: str) -> None:
    """Register a family's env id with Tune (a ValueError if no family claims it)."""
    from ray import tune

    family = env_family(env_id)
    if family is None:
        raise ValueError(f"env={env_id!r} belongs to no registered env family")
    if family.check_id is not None:
        family.check_id(env_id)  # the one-line error (with a "did you mean") for an unknown id
    tune.register_env(env_id, functools.partial(_create, env_id))


class EpisodeInfoLogger:
    """``on_episode_end`` hook: logs the family's episode-end ``info`` numbers as env-runner metrics."""

    def __init__(self, metrics: dict[str, str]):
        self.metrics = dict(metrics)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EpisodeInfoLogger) and other.metrics == self.metrics

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.metrics.items())))

    def __call__(self, *, episode, metrics_logger=None, **_: Any) -> None:
        if metrics_logger is None:
            return
        info = episode.get_infos(-1)
        if not isinstance(info, dict):
            return
        for key, metric in self.metrics.items():
            if key in info:
                metrics_logger.log_value(metric, float(info[key]), reduce="mean", window=_WINDOW)


def with_env_family(config: AlgorithmConfig) -> AlgorithmConfig:
    """Finish the env part of a config whose env id a registered family claims; a plain gymnasium id is
    registered to be made with its observations checked (the config itself unchanged)."""
    family = env_family(config.env)
    if family is None:
        register_checked_env(config.env)
        return config
    register_family_env(config.env)
    family.validate_options(dict(config.env_config), source=f"env_config of {config.env}")
    if family.episode_info_metrics:
        hooks = config.callbacks_on_episode_end
        hooks = [] if hooks is None else list(hooks) if isinstance(hooks, (list, tuple)) else [hooks]
        logger = EpisodeInfoLogger(family.episode_info_metrics)
        if logger not in hooks:
            hooks.append(logger)
        config = config.callbacks(on_episode_end=hooks)
    if family.make_vector is not None:
        config = config.env_runners(gym_env_vectorize_mode="vector_entry_point")
    return config


def register_atari(env_id: str | None = None) -> list[str]:
    """Register one ``ALE/<Game>-v5`` id, or every bundled game's, with Tune; returns the ids."""
    ids = [env_id] if env_id is not None else list(atari_env_ids())
    for name in ids:
        register_family_env(name)
    return ids


def with_atari(config: AlgorithmConfig) -> AlgorithmConfig:
    """``with_env_family`` for an ``ALE/<Game>-v5`` config (a ValueError for any other env)."""
    if not is_atari_id(config.env):
        raise ValueError(f"env={config.env!r} is not an Atari id; allowed: ALE/<Game>-v5")
    return with_env_family(config)
