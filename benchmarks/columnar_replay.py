"""Replay memory and sampling cost: ``rllib_sparse.replay.TransitionReplay`` against torchrl's
``LazyTensorStorage`` replay (when torchrl is installed), on DeepMind Control humanoid's shapes.

Both hold the same transitions (episodes of 500 agent steps, float32 observations and actions). The
script prints, per replay: bytes held / bytes of the transition arrays with each observation once
(observations, actions, rewards, terminated flags), microseconds per transition written, and
microseconds per ``k`` minibatches of ``batch`` transitions sampled (interleaved rounds: per-round
ratio, median and min-max). torchrl keeps ``("next", "observation")`` as a second copy: its natural
layout for one-step transitions. Results: docs/benchmarks.md, "Columnar replay".

    .venv/bin/python benchmarks/columnar_replay.py
    .venv/bin/python benchmarks/columnar_replay.py --capacity 1000000 --rounds 9
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np
import torch

from rllib_sparse.replay import TransitionReplay

EPISODE = 500


def episodes(capacity: int, obs_dim: int, action_dim: int, seed: int = 0):
    """Chunks of one episode each: obs (T+1, d), actions (T, a), rewards (T,)."""
    rng = np.random.default_rng(seed)
    for _ in range(capacity // EPISODE):
        yield (rng.standard_normal((EPISODE + 1, obs_dim), dtype=np.float32),
               rng.standard_normal((EPISODE, action_dim), dtype=np.float32),
               rng.standard_normal(EPISODE, dtype=np.float32))


def fill_ours(capacity: int, obs_dim: int, action_dim: int) -> tuple[TransitionReplay, float]:
    replay = TransitionReplay(capacity, (obs_dim,), (action_dim,))
    start, written = time.perf_counter(), 0
    for obs, actions, rewards in episodes(capacity, obs_dim, action_dim):
        for t in range(EPISODE):
            last = t == EPISODE - 1
            replay.add_batch(obs[t:t + 1], actions[t:t + 1], rewards[t:t + 1], obs[t + 1:t + 2], [False], [last])
        written += EPISODE
    return replay, (time.perf_counter() - start) / written * 1e6


def fill_torchrl(capacity: int, obs_dim: int, action_dim: int):
    from tensordict import TensorDict
    from torchrl.data import LazyTensorStorage, ReplayBuffer

    buffer = ReplayBuffer(storage=LazyTensorStorage(capacity))
    start, written = time.perf_counter(), 0
    for obs, actions, rewards in episodes(capacity, obs_dim, action_dim):
        obs_t = torch.from_numpy(obs)
        for t in range(EPISODE):  # one env step at a time, as an env loop writes
            buffer.add(TensorDict({
                "observation": obs_t[t], "action": torch.from_numpy(actions[t]),
                "next": {"observation": obs_t[t + 1], "reward": torch.tensor(rewards[t]),
                         "terminated": torch.tensor(False)}}, batch_size=[]))
        written += EPISODE
    return buffer, (time.perf_counter() - start) / written * 1e6


def torchrl_bytes(buffer) -> int:
    storage = buffer.storage._storage
    return sum(t.numel() * t.element_size() for t in storage.values(include_nested=True, leaves_only=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capacity", type=int, default=200_000)
    parser.add_argument("--obs-dim", type=int, default=67)
    parser.add_argument("--action-dim", type=int, default=21)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    arrays = args.capacity * ((args.obs_dim + args.action_dim) * 4 + 4 + 1)
    replays = {"columnar": fill_ours(args.capacity, args.obs_dim, args.action_dim)}
    try:
        replays["torchrl"] = fill_torchrl(args.capacity, args.obs_dim, args.action_dim)
    except ImportError as error:
        print(f"torchrl not installed ({error}); columnar replay only")
    out = {"machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, torch {torch.__version__}",
           "capacity": args.capacity, "shapes": [args.obs_dim, args.action_dim], "batch": args.batch, "k": args.k}
    for name, (replay, fill_us) in replays.items():
        held = replay.nbytes() if name == "columnar" else torchrl_bytes(replay)
        out[name] = {"bytes_over_arrays": round(held / arrays, 3), "fill_us_per_transition": round(fill_us, 1)}

    def sample_us(name: str) -> float:
        replay = replays[name][0]
        start = time.perf_counter()
        for _ in range(args.samples):
            if name == "columnar":
                replay.sample(args.batch, args.k)
            else:
                replay.sample(args.batch * args.k)
        return (time.perf_counter() - start) / args.samples * 1e6

    rounds = {name: [] for name in replays}
    for _ in range(args.rounds):
        for name in replays:
            rounds[name].append(sample_us(name))
    for name, values in rounds.items():
        out[name]["sample_us_median"] = round(statistics.median(values), 1)
        out[name]["sample_us_range"] = [round(min(values), 1), round(max(values), 1)]
    if "torchrl" in rounds:
        ratios = [t / c for t, c in zip(rounds["torchrl"], rounds["columnar"])]
        out["torchrl_over_columnar_sample"] = {"median": round(statistics.median(ratios), 2),
                                               "range": [round(min(ratios), 2), round(max(ratios), 2)]}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
