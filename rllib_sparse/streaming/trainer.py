"""The stream loop: one env, one agent, one transition at a time — what a trial of ``StreamAC`` runs.

    obs = normalise(reset())
    repeat: a = act(obs); obs', r, terminated, truncated = step(clip(a)); learn(obs, a, r, normalise(obs'), ...)

Kept here, Ray-free and free of any tracking, so a plain script, the benchmark and the sweep's trial
runner (``rllib_sparse.sweep.stream_runner``) run the same loop. ``state_dict`` holds all that a
checkpoint needs to continue exactly: the agent (weights, traces, normaliser statistics, sampler), the
live episode (the env's state where it can be read: ``rllib_sparse.envs.state``, the current
observation, the return so far) and the counters.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch

from rllib_sparse.diagnostics import GradientNormWindow, gradient_norm, network_diagnostics
from rllib_sparse.envs.state import env_state, restore_env_state
from rllib_sparse.sparsity import max_masked_magnitude
from rllib_sparse.streaming.agent import StreamAC

#: Finished episodes averaged into the reported return (RLlib's ``metrics_num_episodes_for_smoothing``).
EPISODE_WINDOW = 100


@dataclass
class StreamStats:
    """What ``StreamTrainer.run`` did: env steps, finished episodes' returns and lengths, mean |δ|."""

    steps: int
    seconds: float
    episode_returns: list[float] = field(default_factory=list)
    episode_lengths: list[int] = field(default_factory=list)
    td_error_abs_mean: float = float("nan")


class StreamTrainer:
    """``agent`` learning on ``env`` from the first ``reset(seed=seed)`` on.

    ``diagnostic_rows`` > 0 keeps the newest that many normalised observations (and each update's
    gradient norms) for ``diagnostics``; 0 keeps nothing and costs nothing.
    """

    def __init__(self, env: gym.Env, agent: StreamAC, *, seed: int = 0, diagnostic_rows: int = 0):
        if not isinstance(env.action_space, gym.spaces.Box):
            raise ValueError(f"action space {env.action_space} is not supported; allowed: Box")
        self.env, self.agent, self.seed = env, agent, seed
        self.low, self.high = env.action_space.low, env.action_space.high
        self.env_steps = 0
        self.episodes = 0
        self.restarts = 0  #: episodes cut short by a restore whose env state could not be saved
        self.recent_returns: deque[float] = deque(maxlen=EPISODE_WINDOW)
        self.recent_lengths: deque[int] = deque(maxlen=EPISODE_WINDOW)
        self._episode_return, self._episode_length = 0.0, 0
        self._obs = agent.normalize(env.reset(seed=seed)[0])
        self.diagnostic_rows = diagnostic_rows
        self._rows: deque[torch.Tensor] = deque(maxlen=max(diagnostic_rows, 1))
        self._grad_norms = GradientNormWindow({name: [body, head] for name, (body, head) in agent.networks().items()})

    def run(self, steps: int) -> StreamStats:
        """``steps`` env steps, one update each."""
        agent, env, keep = self.agent, self.env, self.diagnostic_rows > 0
        stats = StreamStats(steps, 0.0)
        abs_delta = 0.0
        start = time.perf_counter()
        obs = self._obs
        for _ in range(steps):
            action = agent.act(obs)
            raw, reward, terminated, truncated, _ = env.step(np.clip(action, self.low, self.high))
            next_obs = agent.normalize(raw)
            abs_delta += abs(agent.learn(obs, action, float(reward), next_obs, terminated, truncated))
            if keep:
                self._rows.append(obs)
                self._grad_norms.add_update()
            self._episode_return += float(reward)
            self._episode_length += 1
            if terminated or truncated:
                self._finish_episode(stats)
                next_obs = agent.normalize(env.reset()[0])
            obs = next_obs
        self._obs = obs
        self.env_steps += steps
        stats.seconds = time.perf_counter() - start
        stats.td_error_abs_mean = abs_delta / steps if steps else float("nan")
        return stats

    def _finish_episode(self, stats: StreamStats) -> None:
        stats.episode_returns.append(self._episode_return)
        stats.episode_lengths.append(self._episode_length)
        self.recent_returns.append(self._episode_return)
        self.recent_lengths.append(self._episode_length)
        self.episodes += 1
        self._episode_return, self._episode_length = 0.0, 0

    # ------------------------------------------------------------------ diagnostics and mask integrity

    def diagnostics(self, *, delta: float = 0.01, dormant: str = "pre_activation", taus=None,
                    interference_samples: int = 32) -> dict:
        """The paper's diagnostics of each network on the newest observations (as the learner's are on
        its newest training rows); ``{"metrics": {network: {name: value}}, "cosines": {network: matrix}}``."""
        if not self._rows:
            return {"metrics": {}, "cosines": {}}
        obs = torch.stack(list(self._rows))
        grad_norms, updates = self._grad_norms.mean_and_reset()
        metrics, cosines = {}, {}
        for name, (body, head) in self.agent.networks().items():
            values, matrix = network_diagnostics(body, head, obs, delta=delta, dormant=dormant, taus=taus,
                                                 interference_samples=interference_samples)
            values["grad_norm"] = grad_norms.get(name, gradient_norm([body, head]))
            values["grad_norm_updates"] = float(updates)
            values["rows"] = float(obs.shape[0])
            metrics[name] = values
            if matrix.numel():
                cosines[name] = matrix.numpy()
        return {"metrics": metrics, "cosines": cosines}

    def max_masked_weight(self) -> float:
        """Largest |weight| at a pruned place in either network (0.0 while the masks hold)."""
        return max(max_masked_magnitude(self.agent.actor), max_masked_magnitude(self.agent.critic))

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict:
        return {"agent": self.agent.state_dict(), "env": env_state(self.env), "obs": self._obs,
                "episode_return": self._episode_return, "episode_length": self._episode_length,
                "env_steps": self.env_steps, "episodes": self.episodes, "restarts": self.restarts,
                "recent_returns": list(self.recent_returns), "recent_lengths": list(self.recent_lengths),
                "rows": list(self._rows)}

    def load_state_dict(self, state: dict) -> None:
        """Continue where ``state`` was taken: the same episode if the env's state was saved, else a new
        episode (its traces cleared, as at any episode's end; counted in ``restarts``)."""
        self.agent.load_state_dict(state["agent"])
        self.env_steps, self.episodes = state["env_steps"], state["episodes"]
        self.restarts = state["restarts"]
        self.recent_returns = deque(state["recent_returns"], maxlen=EPISODE_WINDOW)
        self.recent_lengths = deque(state["recent_lengths"], maxlen=EPISODE_WINDOW)
        self._rows = deque(state["rows"], maxlen=max(self.diagnostic_rows, 1))
        if state["env"] is not None:
            restore_env_state(self.env, state["env"])
            self._obs = state["obs"]
            self._episode_return, self._episode_length = state["episode_return"], state["episode_length"]
            return
        for optimizer in (self.agent.policy_optimizer, self.agent.value_optimizer):
            for group_state in optimizer.state.values():
                group_state["trace"].zero_()
        self.restarts += 1
        self._obs = self.agent.normalize(self.env.reset(seed=self.seed + self.restarts)[0])
        self._episode_return, self._episode_length = 0.0, 0
