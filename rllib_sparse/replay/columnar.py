"""A uniform replay of one-step transitions, stored as columns, each observation once.

Why not RLlib's ``EpisodeReplayBuffer``: it keeps episode objects and rebuilds one episode per sampled
transition, which costs more per minibatch than a small network's whole update (docs/benchmarks.md,
"Where an RLlib SAC step goes on CPU"). Why not torchrl's ``LazyTensorStorage``: a transition there
holds its next observation as a second copy (twice the memory of the largest column), and getting one
copy takes trajectory slices and their bookkeeping (docs/design.md, "The columnar replay", measures
both). This module is the few hundred lines that neither offers: observations in one ring, transitions
in another that point into it.

Layout, for ``capacity`` transitions:

- an observation ring with room for ``capacity`` observations plus ``extra_observations`` (episode
  ends: the final observation of an episode starts no transition of its own, and each env's
  first observation after a reset has no transition leading to it);
- a transition ring of ``capacity`` rows: observation index, next-observation index, action, reward,
  terminated (True: no bootstrap; a truncated episode bootstraps from its final observation).

Transitions are written in time order, so the live ones are one contiguous stretch of the ring: a
uniform sample is ``randint`` over that stretch and a gather per column, ``k`` minibatches in one
call and one device transfer. When the observation ring wraps, the transitions that point at the
observation being overwritten are the oldest ones, and they are dropped first.

Several envs stepping in lockstep (a vector env) write through ``add_batch``: each env keeps its own
last observation index, so its transitions chain correctly however they interleave.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import torch


class TransitionReplay:
    """Uniform one-step replay: ``add_batch`` per env step, ``sample(batch_size, k)`` per learner call."""

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], action_shape: tuple[int, ...], *,
                 num_envs: int = 1, obs_dtype: torch.dtype = torch.float32,
                 action_dtype: torch.dtype = torch.float32, extra_observations: int | None = None,
                 device: str | torch.device = "cpu", seed: int = 0):
        if capacity < 1 or num_envs < 1:
            raise ValueError(f"capacity={capacity!r}, num_envs={num_envs!r} are invalid; allowed: integers >= 1")
        self.capacity, self.num_envs = int(capacity), int(num_envs)
        # Room for the observations that start no transition (one per episode end and per env), 2% of
        # the capacity by default: episodes shorter than ~50 steps shrink the stretch a little instead.
        extra = max(2 * num_envs, math.ceil(0.02 * capacity)) if extra_observations is None else extra_observations
        self.obs_capacity = self.capacity + int(extra)
        if self.obs_capacity < 4 * self.num_envs:
            raise ValueError(f"capacity={capacity!r} is too small for num_envs={num_envs!r}; allowed: "
                             f"capacity + extra_observations >= {4 * self.num_envs}")
        self.device = torch.device(device)
        self.obs = torch.zeros((self.obs_capacity, *obs_shape), dtype=obs_dtype, device=self.device)
        self.obs_index = torch.zeros(self.capacity, dtype=torch.int64, device=self.device)
        self.next_obs_index = torch.zeros(self.capacity, dtype=torch.int64, device=self.device)
        self.actions = torch.zeros((self.capacity, *action_shape), dtype=action_dtype, device=self.device)
        self.rewards = torch.zeros(self.capacity, dtype=torch.float32, device=self.device)
        self.terminated = torch.zeros(self.capacity, dtype=torch.bool, device=self.device)
        # Bookkeeping on the host (no device round trip per step): per transition row, the write count of
        # its observation, which says when the observation ring has overwritten it.
        self._row_obs_count = np.zeros(self.capacity, dtype=np.int64)
        self._obs_count = 0  # observations ever written (the ring position is this modulo obs_capacity)
        self._start = 0  # transitions ever dropped (the oldest live one is this, modulo capacity)
        self._end = 0  # transitions ever written
        self._last_obs = [-1] * self.num_envs  # per env: the observation count of its current observation
        self._generator = torch.Generator(device=self.device).manual_seed(int(seed))
        # On the CPU, per-step writes go through numpy views of the same memory: a numpy row write costs a
        # microsecond, a torch indexed write several.
        self._host = ({name: getattr(self, name).numpy() for name in _TENSORS}
                      if self.device.type == "cpu" else None)

    def __len__(self) -> int:
        return self._end - self._start

    # ------------------------------------------------------------------ writing

    def _write_obs(self, obs: torch.Tensor) -> list[int]:
        """Write observations (one per row), dropping the transitions that point at what they replace."""
        counts = list(range(self._obs_count, self._obs_count + obs.shape[0]))
        self._obs_count += obs.shape[0]
        oldest_kept = self._obs_count - self.obs_capacity  # observation counts below this are overwritten
        while self._start < self._end and self._row_obs_count[self._start % self.capacity] < oldest_kept:
            self._start += 1
        slots = [c % self.obs_capacity for c in counts]
        if self._host is not None:
            self._host["obs"][slots] = obs
        else:
            self.obs[torch.tensor(slots, device=self.device)] = torch.as_tensor(obs).to(self.device, self.obs.dtype)
        return counts

    def add_batch(self, obs: Any, actions: Any, rewards: Any, next_obs: Any, terminated: Any,
                  truncated: Any) -> None:
        """One step of every env: ``obs`` (what each env's action was taken on), the action, the reward,
        ``next_obs`` (the observation after the step; for an episode that ended, its final observation,
        not the next episode's first), and whether the episode terminated or was truncated."""
        obs, next_obs, actions = np.asarray(obs), np.asarray(next_obs), np.asarray(actions)
        rewards = np.asarray(rewards, dtype=np.float32).reshape(-1)
        terminated = np.asarray(terminated, dtype=bool).reshape(-1)
        truncated = np.asarray(truncated, dtype=bool).reshape(-1)
        n = obs.shape[0]
        if n != self.num_envs:
            raise ValueError(f"add_batch got {n} env rows; allowed: num_envs={self.num_envs}")
        # An env whose current observation is not in the ring (its first step, or evicted) writes ``obs``.
        oldest = self._obs_count - self.obs_capacity
        fresh = [e for e in range(n) if self._last_obs[e] < 0 or self._last_obs[e] < oldest]
        if fresh:
            for env, count in zip(fresh, self._write_obs(obs[fresh])):
                self._last_obs[env] = count
        first = list(self._last_obs)
        nexts = self._write_obs(next_obs)
        rows = [(self._end + e) % self.capacity for e in range(n)]
        self._start = max(self._start, self._end + n - self.capacity)  # a full ring drops its oldest rows
        self._row_obs_count[rows] = first
        columns = {"obs_index": [c % self.obs_capacity for c in first],
                   "next_obs_index": [c % self.obs_capacity for c in nexts],
                   "actions": actions.reshape(n, *self.actions.shape[1:]), "rewards": rewards, "terminated": terminated}
        if self._host is not None:
            for name, values in columns.items():
                self._host[name][rows] = values
        else:
            index = torch.tensor(rows, device=self.device)
            for name, values in columns.items():
                tensor = getattr(self, name)
                tensor[index] = torch.as_tensor(np.asarray(values)).to(self.device, tensor.dtype)
        self._end += n
        for env in range(n):
            # After an episode's end the env's next ``obs`` is a reset observation: written fresh next time.
            self._last_obs[env] = -1 if (terminated[env] or truncated[env]) else nexts[env]

    # ------------------------------------------------------------------ sampling

    def sample(self, batch_size: int, k: int = 1, device: str | torch.device | None = None) -> dict[str, torch.Tensor]:
        """``k`` uniform minibatches of ``batch_size`` transitions, stacked on a leading axis of size ``k``
        (sampled with replacement, as RLlib's and the authors' buffers do), moved to ``device`` in one
        transfer per column: ``obs``, ``actions``, ``rewards``, ``next_obs``, ``terminated``."""
        if len(self) == 0:
            raise ValueError("the replay is empty; allowed: sample after the first add_batch")
        offsets = torch.randint(len(self), (k, batch_size), generator=self._generator, device=self.device)
        rows = (self._start + offsets) % self.capacity
        batch = {"obs": self.obs[self.obs_index[rows]], "actions": self.actions[rows], "rewards": self.rewards[rows],
                 "next_obs": self.obs[self.next_obs_index[rows]], "terminated": self.terminated[rows]}
        if device is not None and torch.device(device) != self.device:
            batch = {key: value.to(device, non_blocking=True) for key, value in batch.items()}
        return batch

    # ------------------------------------------------------------------ memory and checkpoints

    def nbytes(self) -> int:
        """Bytes held by the replay's tensors."""
        tensors = (self.obs, self.obs_index, self.next_obs_index, self.actions, self.rewards, self.terminated)
        return sum(t.numel() * t.element_size() for t in tensors) + self._row_obs_count.nbytes

    def state_dict(self) -> dict[str, Any]:
        """Everything to continue exactly (contents, positions, the sampling generator), as CPU tensors."""
        return {"tensors": {name: getattr(self, name).cpu() for name in _TENSORS},
                "counters": {"obs_count": self._obs_count, "start": self._start, "end": self._end,
                             "last_obs": list(self._last_obs)},
                "row_obs_count": torch.from_numpy(self._row_obs_count.copy()),
                "generator": self._generator.get_state(),
                "shape": {"capacity": self.capacity, "obs_capacity": self.obs_capacity, "num_envs": self.num_envs}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        shape = state["shape"]
        mine = {"capacity": self.capacity, "obs_capacity": self.obs_capacity, "num_envs": self.num_envs}
        if shape != mine:
            raise ValueError(f"replay state of shape {shape} does not fit this replay ({mine})")
        for name in _TENSORS:
            getattr(self, name).copy_(state["tensors"][name])
        counters = state["counters"]
        self._obs_count, self._start, self._end = counters["obs_count"], counters["start"], counters["end"]
        self._last_obs = list(counters["last_obs"])
        self._row_obs_count[:] = state["row_obs_count"].numpy()
        self._generator.set_state(state["generator"])

    def save(self, path) -> None:
        """Write the state compressed (``numpy.savez_compressed``; pixel observations shrink most)."""
        state = self.state_dict()
        arrays = {f"tensor.{name}": tensor.numpy() for name, tensor in state["tensors"].items()}
        arrays["generator"] = state["generator"].numpy()
        arrays["row_obs_count"] = state["row_obs_count"].numpy()
        meta = {**state["counters"], **state["shape"]}
        arrays["meta"] = np.frombuffer(repr(meta).encode(), dtype=np.uint8)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        with open(path, "wb") as file:
            file.write(buffer.getvalue())

    def load(self, path) -> None:
        import ast

        with np.load(path) as data:
            meta = ast.literal_eval(bytes(data["meta"]).decode())
            state = {"tensors": {name: torch.from_numpy(data[f"tensor.{name}"]) for name in _TENSORS},
                     "counters": {key: meta[key] for key in ("obs_count", "start", "end", "last_obs")},
                     "generator": torch.from_numpy(data["generator"]),
                     "row_obs_count": torch.from_numpy(data["row_obs_count"]),
                     "shape": {key: meta[key] for key in ("capacity", "obs_capacity", "num_envs")}}
        self.load_state_dict(state)


_TENSORS = ("obs", "obs_index", "next_obs_index", "actions", "rewards", "terminated")
