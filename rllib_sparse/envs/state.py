"""An env's exact state, saved and put back: for trainers that checkpoint in the middle of an episode.

Why: streaming RL learns from the live episode (its eligibility traces span it), so a checkpoint taken
mid-episode resumes exactly only if the env continues the same episode. Pickling a gymnasium MuJoCo
env does not do that (it re-creates the env from its constructor arguments), so the state is read out:

- MuJoCo envs (gymnasium's ``MujocoEnv``): the whole ``MjData`` (MuJoCo pickles it). Not only the
  integration state (``mj_getState``): after a step, quantities such as body positions (``xpos``) are
  those of the last sub-step's start, and an env that reads them before stepping (Ant's forward
  velocity) would diverge from a restored state recomputed with ``mj_forward``;
- every env: the random generator of the unwrapped env and the time-limit wrapper's step count.

Envs of other kinds have no saved state (``env_state`` returns None): the caller then starts a new
episode after a restore and says so.
"""

from __future__ import annotations

import pickle
from typing import Any

import gymnasium as gym


def _time_limit(env: gym.Env) -> gym.wrappers.TimeLimit | None:
    while isinstance(env, gym.Wrapper):
        if isinstance(env, gym.wrappers.TimeLimit):
            return env
        env = env.env
    return None


def _mujoco(env: gym.Env):
    """(model, data) of a MuJoCo env, else None."""
    unwrapped = env.unwrapped
    model, data = getattr(unwrapped, "model", None), getattr(unwrapped, "data", None)
    if model is None or data is None or type(model).__module__.split(".")[0] != "mujoco":
        return None
    return model, data


def env_state(env: gym.Env) -> dict[str, Any] | None:
    """The env's state as plain values (numpy arrays, ints, dicts), or None if it cannot be read."""
    physics = _mujoco(env)
    if physics is None:
        return None
    limit = _time_limit(env)
    return {"kind": "mujoco", "data": pickle.dumps(physics[1]),
            "elapsed_steps": None if limit is None else limit._elapsed_steps,
            "np_random": env.unwrapped.np_random.bit_generator.state}


def restore_env_state(env: gym.Env, state: dict[str, Any]) -> None:
    """Put back what ``env_state`` read, into an env made the same way and ``reset`` once."""
    physics = _mujoco(env)
    if physics is None or state.get("kind") != "mujoco":
        raise ValueError(f"env {env.spec.id if env.spec else env!r} cannot take a saved state of kind "
                         f"{state.get('kind')!r}; allowed: a MuJoCo env made like the saved one")
    env.unwrapped.data = pickle.loads(state["data"])  # noqa: S301 - our own checkpoint
    limit = _time_limit(env)
    if limit is not None and state["elapsed_steps"] is not None:
        limit._elapsed_steps = state["elapsed_steps"]
    env.unwrapped.np_random.bit_generator.state = state["np_random"]
