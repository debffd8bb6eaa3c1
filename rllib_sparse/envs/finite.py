"""Refuse NaN and infinite observations where the env makes them, naming the env, the step and the episode.

Without this a non-finite observation travels on into the networks and fails far from its cause (torch's
"probability tensor contains either inf, nan or element < 0" when sampling an action), or silently turns
every weight into NaN. ``check_observations`` wraps an env whose observations are floats (a ``Box`` of a
floating dtype) in a wrapper that checks each one with ``np.isfinite`` (about a microsecond a step:
benchmarks/observation_check_overhead.py);
envs with integer observations (Atari's frames, discrete states) are returned as they are. Every env
this project makes goes through it: ``make_env`` (trainers outside RLlib) and the RLlib env creators
of ``rllib_sparse.rllib.core.env_families``. No Ray import here.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class NonFiniteObservationError(ValueError):
    """An env returned a NaN or infinite observation; the message is one line naming env, step and episode."""


def _checked(space: gym.Space) -> bool:
    return isinstance(space, gym.spaces.Box) and np.issubdtype(space.dtype, np.floating)


def _what(obs: np.ndarray) -> str:
    """``nan at element 3`` (the first non-finite element, flat index) of an observation."""
    flat = np.asarray(obs, dtype=np.float64).reshape(-1)
    index = int(np.flatnonzero(~np.isfinite(flat))[0])
    return f"{flat[index]} at element {index}"


class FiniteObservations(gym.Wrapper):
    """Raises ``NonFiniteObservationError`` for an observation with a NaN or infinite element.

    Steps count from the episode's reset (the reset's observation is step 0); episodes count from 1 in
    this env copy.
    """

    def __init__(self, env: gym.Env, env_id: str):
        super().__init__(env)
        self.env_id = env_id
        self.episode = 0
        self.steps = 0

    def reset(self, **kwargs) -> tuple[Any, dict]:
        obs, info = self.env.reset(**kwargs)
        self.episode += 1
        self.steps = 0
        if not np.isfinite(obs).all():
            self._refuse(obs)
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        if not np.isfinite(obs).all():
            self._refuse(obs)
        return obs, reward, terminated, truncated, info

    def _refuse(self, obs) -> None:
        raise NonFiniteObservationError(f"env {self.env_id!r} returned a non-finite observation ({_what(obs)}) "
                                        f"at step {self.steps} of episode {self.episode}")


class FiniteVectorObservations(gym.vector.VectorWrapper):
    """``FiniteObservations`` for a vectorised env: one check per batch; the error names the sub-env."""

    def __init__(self, env: gym.vector.VectorEnv, env_id: str):
        super().__init__(env)
        self.env_id = env_id
        self.episodes = np.zeros(env.num_envs, dtype=np.int64)
        self.steps = np.zeros(env.num_envs, dtype=np.int64)

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.episodes += 1
        self.steps[:] = 0
        if not np.isfinite(obs).all():
            self._refuse(obs)
        return obs, info

    def step(self, actions):
        obs, reward, terminated, truncated, info = self.env.step(actions)
        self.steps += 1
        if not np.isfinite(obs).all():
            self._refuse(obs)
        # Sub-envs that ended now start their next episode (gymnasium's next-step autoreset) at step 0.
        done = np.logical_or(terminated, truncated)
        self.episodes[done] += 1
        self.steps[done] = -1
        return obs, reward, terminated, truncated, info

    def _refuse(self, obs) -> None:
        batch = np.asarray(obs, dtype=np.float64).reshape(self.num_envs, -1)
        index = int(np.flatnonzero(~np.isfinite(batch).all(axis=1))[0])
        raise NonFiniteObservationError(
            f"env {self.env_id!r} (sub-env {index}) returned a non-finite observation ({_what(batch[index])}) "
            f"at step {max(int(self.steps[index]), 0)} of episode {int(self.episodes[index])}")


def check_observations(env: gym.Env | gym.vector.VectorEnv, env_id: str) -> gym.Env | gym.vector.VectorEnv:
    """``env`` with its observations checked (float observations), or ``env`` itself (other observations)."""
    if isinstance(env, gym.vector.VectorEnv):
        return FiniteVectorObservations(env, env_id) if _checked(env.single_observation_space) else env
    return FiniteObservations(env, env_id) if _checked(env.observation_space) else env
