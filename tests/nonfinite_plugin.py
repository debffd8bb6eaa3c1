"""A sweep-file plugin for tests/test_nonfinite.py: CartPole with non-finite rewards or observations.

``NanReward-v0`` gives a NaN reward at every step from its ``nan_from``-th (counted over the env's life,
so every later episode has one); ``NanObservation-v0`` returns an observation with a NaN from its
``nan_from``-th step on. Plain gymnasium ids, registered when a sweep file names this module under
``plugins:`` (the driver and every trial import it).
"""

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleEnv


class NonFiniteCartPole(CartPoleEnv):
    def __init__(self, nan_from: int = 1, observation: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.nan_from, self.observation, self.lifetime_steps = nan_from, observation, 0

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        self.lifetime_steps += 1
        if self.lifetime_steps >= self.nan_from:
            if self.observation:
                obs = obs.copy()
                obs[2] = np.nan
            else:
                reward = float("nan")
        return obs, reward, terminated, truncated, info


def _nan_observation(**kwargs):
    return NonFiniteCartPole(observation=True, **kwargs)


for _id, _entry in (("NanReward-v0", NonFiniteCartPole), ("NanObservation-v0", _nan_observation)):
    if _id not in gym.registry:
        gym.register(_id, entry_point=_entry, max_episode_steps=200)
