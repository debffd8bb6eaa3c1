"""Atari in RLlib: every bundled ``ALE/<Game>-v5`` id as a Tune-registered env, and its config.

RLlib's new stack does not wrap Atari envs itself. ``register_atari`` puts our preprocessed envs
(``rllib_sparse.envs.atari``) under the usual ids, so ``config.environment("ALE/Pong-v5")`` works in a
plain RLlib config; ``with_atari`` then selects ale-py's native vector env and reports full-game
returns (unclipped, all lives) next to RLlib's per-life, clipped ones.
"""

from __future__ import annotations

import functools
from typing import Any

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

from rllib_sparse.envs.atari import AtariOptions, atari_env_ids, atari_game, is_atari_id, make_atari, make_atari_vector

#: Keys under ``env_runners/`` in RLlib results.
GAME_RETURN_KEY = "game_return_mean"
GAME_LENGTH_KEY = "game_length_mean"
_WINDOW = 100  # games averaged, as RLlib's own episode metrics


def _create(env_id: str, env_config: dict) -> Any:
    """RLlib calls this per env (no ``num_envs``) or once per runner with ``num_envs`` (vector entry)."""
    options = {k: v for k, v in dict(env_config).items() if k != "num_envs"}
    if "num_envs" in env_config:
        return make_atari_vector(env_id, int(env_config["num_envs"]), **options)
    return make_atari(env_id, **options)


def register_atari(env_id: str | None = None) -> list[str]:
    """Register one ``ALE/<Game>-v5`` id, or every bundled game's, with Tune; returns the ids."""
    from ray import tune

    ids = [env_id] if env_id is not None else list(atari_env_ids())
    for name in ids:
        atari_game(name)  # the one-line error for an unknown game
        tune.register_env(name, functools.partial(_create, name))
    return ids


def log_game_return(*, episode, metrics_logger=None, **_: Any) -> None:
    """``on_episode_end`` hook: a training episode that ended its game logs the game's real return."""
    if metrics_logger is None:
        return
    info = episode.get_infos(-1)
    if isinstance(info, dict) and "game_return" in info:
        metrics_logger.log_value(GAME_RETURN_KEY, float(info["game_return"]), reduce="mean", window=_WINDOW)
        metrics_logger.log_value(GAME_LENGTH_KEY, float(info["game_length"]), reduce="mean", window=_WINDOW)


def with_atari(config: AlgorithmConfig) -> AlgorithmConfig:
    """Finish the Atari part of a config whose env is an ``ALE/<Game>-v5`` id.

    Validates the ``env_config`` (one-line error naming the key), registers the id, steps envs through
    gymnasium's vector entry point (ale-py's native vector env unless ``env_config.vectorized`` is
    false) and adds the ``on_episode_end`` hook that logs ``env_runners/game_return_mean``.
    """
    if not is_atari_id(config.env):
        raise ValueError(f"env={config.env!r} is not an Atari id; allowed: ALE/<Game>-v5")
    register_atari(config.env)
    AtariOptions.parse(dict(config.env_config), source=f"env_config of {config.env}")
    hooks = config.callbacks_on_episode_end
    hooks = [] if hooks is None else list(hooks) if isinstance(hooks, (list, tuple)) else [hooks]
    if log_game_return not in hooks:
        hooks.append(log_game_return)
    return (config.env_runners(gym_env_vectorize_mode="vector_entry_point")
            .callbacks(on_episode_end=hooks))
