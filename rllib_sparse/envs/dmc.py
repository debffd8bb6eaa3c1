"""DeepMind Control Suite tasks as gymnasium envs: ``dmc/<domain>-<task>`` (e.g. ``dmc/humanoid-run``).

The paper's state-based study (SimBa + SAC/DDPG on the hardest DMC tasks) trains on flattened state
observations with every action repeated twice: a task's episode is 1000 simulator steps, so 500
decisions, and its return (summed over the repeats) stays on DMC's 0–1000 scale.

Built from the ecosystem's parts: ``dm_control.suite`` loads the task, Farama's ``shimmy`` turns it into
a gymnasium env (seeding the task's random state from ``reset(seed=...)``, so the trial's seed decides
the task's initial states), gymnasium's ``FlattenObservation`` flattens the observation dict. Only the
action repeat is ours: gymnasium has no generic one (its frame skip wrappers are Atari's max-pooling).
dm-control, mujoco and shimmy are the package's ``dmc`` extra, imported on first use: without them a
``dmc/...`` env is refused in one line naming the extra. No Ray import here.
"""

from __future__ import annotations

import difflib
import functools
from typing import Annotated

import gymnasium as gym
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from rllib_sparse.envs.registry import EnvFamily, register_env_family

PREFIX = "dmc/"
#: The paper's setting (and SimBa's, DrQ's): every decision acts for two simulator steps.
DEFAULT_ACTION_REPEAT = 2


class DmcOptions(BaseModel):
    """``env_config`` options of a ``dmc/<domain>-<task>`` env."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    #: Simulator steps per decision (rewards summed). 1: every simulator step is a decision.
    action_repeat: Annotated[int, Field(ge=1, le=100)] = DEFAULT_ACTION_REPEAT


def is_dmc_id(env_id: str) -> bool:
    return isinstance(env_id, str) and env_id.startswith(PREFIX)


#: How to install what this family needs (dm-control, mujoco, shimmy): the package's ``dmc`` extra.
EXTRA = "pip install 'rllib-sparse[dmc]'"


@functools.cache
def _suite_modules():
    from dm_control import suite  # MUJOCO_GL is chosen in rllib_sparse/__init__.py (headless by default)
    from shimmy import dm_control_compatibility

    return suite, dm_control_compatibility


def _suite(env_id: str | None = None):
    """dm_control's suite, or a one-line ValueError naming the extra to install (naming ``env`` if given)."""
    try:
        return _suite_modules()[0]
    except ImportError as error:
        what = f"env={env_id!r} needs" if env_id is not None else "DeepMind Control tasks (dmc/<domain>-<task>) need"
        reason = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
        raise ValueError(f"{what} DeepMind Control (dm-control, mujoco, shimmy), which cannot be imported "
                         f"here ({reason}); install it with: {EXTRA}") from None


def dmc_tasks(env_id: str | None = None) -> dict[str, list[str]]:
    """Every task of the suite, by domain (the suite's own list: benchmarking and extra tasks); a one-line
    ValueError naming the ``dmc`` extra if DeepMind Control is not installed."""
    tasks: dict[str, list[str]] = {}
    for domain, task in _suite(env_id).ALL_TASKS:
        tasks.setdefault(domain, []).append(task)
    return tasks


def dmc_task(env_id: str) -> tuple[str, str]:
    """``dmc/<domain>-<task>`` -> (domain, task), or a one-line ValueError listing what exists."""
    name = env_id[len(PREFIX):] if is_dmc_id(env_id) else env_id
    domain, sep, task = name.partition("-")
    tasks = dmc_tasks(env_id)
    if not sep or not domain or not task:
        raise ValueError(f"env={env_id!r} is not a DeepMind Control id; allowed: dmc/<domain>-<task>, "
                         f"e.g. dmc/humanoid-run (domains: {', '.join(sorted(tasks))})")
    if domain not in tasks:
        close = difflib.get_close_matches(domain, list(tasks), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"env={env_id!r}: domain {domain!r} is not in the DeepMind Control suite{hint}; "
                         f"allowed domains: {', '.join(sorted(tasks))}")
    if task not in tasks[domain]:
        close = difflib.get_close_matches(task, tasks[domain], n=1)
        hint = f" (did you mean {PREFIX}{domain}-{close[0]}?)" if close else ""
        raise ValueError(f"env={env_id!r}: {domain} has no task {task!r}{hint}; allowed tasks of {domain}: "
                         f"{', '.join(tasks[domain])}")
    return domain, task


class ActionRepeat(gym.Wrapper):
    """Repeat each action ``repeat`` times, summing the rewards; stop early when the episode ends."""

    def __init__(self, env: gym.Env, repeat: int):
        super().__init__(env)
        self.repeat = int(repeat)

    def step(self, action):
        total = 0.0
        for _ in range(self.repeat):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return obs, total, terminated, truncated, info


def make_dmc(env_id: str, action_repeat: int = DEFAULT_ACTION_REPEAT) -> gym.Env:
    """One DMC task: flattened float32 state observations, float32 actions in [-1, 1], action repeat.

    The episode ends where the task's own time limit ends it (1000 simulator steps for the suite's
    benchmarking tasks), reported as ``truncated``, as a time limit should be.
    """
    domain, task = dmc_task(env_id)  # imports dm_control headless first, then shimmy (or names the extra)
    suite, compatibility = _suite_modules()

    env: gym.Env = compatibility.DmControlCompatibilityV0(suite.load(domain, task))
    env = gym.wrappers.FlattenObservation(env)
    space = env.observation_space
    env = gym.wrappers.TransformObservation(
        env, lambda obs: obs.astype(np.float32),
        gym.spaces.Box(space.low.astype(np.float32), space.high.astype(np.float32), dtype=np.float32))
    env = _Float32Actions(env)
    if action_repeat > 1:
        env = ActionRepeat(env, action_repeat)
    return env


class _Float32Actions(gym.ActionWrapper):
    """DMC declares float64 actions; RLlib's modules emit float32, which the simulator takes as is."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        space = env.action_space
        self.action_space = gym.spaces.Box(space.low.astype(np.float32), space.high.astype(np.float32),
                                           dtype=np.float32)

    def action(self, action):
        return np.asarray(action, dtype=np.float64)


def dmc_env_ids() -> dict[str, str]:
    """Every ``dmc/<domain>-<task>`` id, for ``rllib-sparse envs``."""
    return {f"{PREFIX}{domain}-{task}": domain for domain, tasks in dmc_tasks().items() for task in tasks}


DMC = register_env_family(EnvFamily(
    name="dmc",
    matches=is_dmc_id,
    make=make_dmc,
    options=DmcOptions,
    check_id=dmc_task,
    list_ids=dmc_env_ids,
    summary="DeepMind Control Suite (dm_control via shimmy): flattened state observations, action repeat 2",
))
