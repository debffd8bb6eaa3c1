"""Observation normalisation and reward scaling, one sample at a time, as streaming deep RL does them.

Both use Welford's running mean and *sample* variance (1 until two samples are seen). Observations are
standardised by their own statistics; rewards are divided by the standard deviation of the discounted
return (γ·G + r, restarted at each episode's end), not of the rewards, so that the TD errors that ObGD
bounds have a scale that does not depend on the task. Both carry their state in ``state_dict`` so a
checkpoint resumes them exactly.
"""

from __future__ import annotations

import numpy as np


class RunningMeanStd:
    """Welford's running mean and sample variance of vectors (or scalars) seen one at a time."""

    def __init__(self, shape: tuple[int, ...] = ()):
        self.mean = np.zeros(shape, np.float64)
        self.sum_sq = np.zeros(shape, np.float64)  # Σ (x − mean_before)(x − mean_after)
        self.count = 0

    def update(self, x) -> None:
        x = np.asarray(x, np.float64)
        self.count += 1
        before = x - self.mean
        self.mean = self.mean + before / self.count
        self.sum_sq = self.sum_sq + before * (x - self.mean)

    @property
    def var(self) -> np.ndarray:
        return self.sum_sq / (self.count - 1) if self.count >= 2 else np.ones_like(self.mean)

    def state_dict(self) -> dict:
        return {"mean": self.mean.copy(), "sum_sq": self.sum_sq.copy(), "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.mean, self.sum_sq, self.count = np.array(state["mean"]), np.array(state["sum_sq"]), int(state["count"])


class ObservationNormalizer:
    """(o − mean) / √(var + ε), the statistics updated with every observation before it is used."""

    def __init__(self, shape: tuple[int, ...], epsilon: float = 1e-8):
        self.stats, self.epsilon = RunningMeanStd(shape), epsilon

    def __call__(self, obs, update: bool = True) -> np.ndarray:
        if update:
            self.stats.update(obs)
        return ((np.asarray(obs, np.float64) - self.stats.mean) / np.sqrt(self.stats.var + self.epsilon)).astype(
            np.float32)

    def state_dict(self) -> dict:
        return {"stats": self.stats.state_dict(), "epsilon": self.epsilon}

    def load_state_dict(self, state: dict) -> None:
        self.stats.load_state_dict(state["stats"])
        self.epsilon = state["epsilon"]


class RewardScaler:
    """r / √(var(G) + ε), G the running discounted return (γ·G + r), reset to 0 after an episode ends."""

    def __init__(self, gamma: float = 0.99, epsilon: float = 1e-8):
        self.stats, self.gamma, self.epsilon, self.discounted = RunningMeanStd(), gamma, epsilon, 0.0

    def __call__(self, reward: float, done: bool) -> float:
        self.discounted = self.gamma * self.discounted + float(reward)
        self.stats.update(self.discounted)
        scaled = float(reward) / float(np.sqrt(self.stats.var + self.epsilon))
        if done:
            self.discounted = 0.0
        return scaled

    def state_dict(self) -> dict:
        return {"stats": self.stats.state_dict(), "gamma": self.gamma, "epsilon": self.epsilon,
                "discounted": self.discounted}

    def load_state_dict(self, state: dict) -> None:
        self.stats.load_state_dict(state["stats"])
        self.gamma, self.epsilon, self.discounted = state["gamma"], state["epsilon"], float(state["discounted"])
