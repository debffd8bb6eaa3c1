"""What an RLlib Learner costs around an SAC update when it is fed columns (no episodes, no learner
connector), against the same update in plain PyTorch.

The best case for keeping RLlib's Learner in an off-policy fast path: a ``MultiAgentBatch`` of 256
transitions handed straight to ``Learner.update`` (our ``SparseSACTorchLearner``, RLlib's SAC losses,
twin Q), against ``learner_update.py``'s plain SAC update of the same sizes (Pendulum-v1's shapes, MLP
networks ``--width`` x 1, twin critics, 1 torch thread). Interleaved rounds; per-round ratio, median
and min-max. Results: docs/benchmarks.md, "RLlib's Learner fed columns".

    .venv/bin/python benchmarks/rllib_learner_overhead.py
    .venv/bin/python benchmarks/rllib_learner_overhead.py --width 512 --rounds 9
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import gymnasium as gym
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # learner_update.py, beside this script

from learner_update import Agent, make_update  # noqa: E402

BATCH = 256


def rllib_update(width: int):
    from ray.rllib.core import DEFAULT_MODULE_ID
    from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
    from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME

    from rllib_sparse.rllib import algorithm_config, with_sparse_model

    config = algorithm_config("SAC").environment("Pendulum-v1").training(train_batch_size_per_learner=BATCH)
    learner = with_sparse_model(config, "mlp", width=width, depth=1).build_learner(env=gym.make("Pendulum-v1"))
    columns = _columns()
    step = [1000]

    def update() -> None:
        step[0] += 1
        batch = MultiAgentBatch({DEFAULT_MODULE_ID: SampleBatch(dict(columns))}, env_steps=BATCH)
        learner.update(batch=batch, timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: step[0]})

    return update


def plain_update(width: int):
    from rllib_sparse.networks.mlp import MLP

    agent = Agent(width, 0.0, obs=3, act=1, network=MLP, actor_width=width, actor_depth=1, critic_depth=1, twin=True)
    update, c = make_update(agent), _columns()
    args = (c["obs"], c["actions"], c["rewards"], c["new_obs"], torch.zeros(BATCH))
    return lambda: update(*args)


def _columns() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"obs": torch.randn(BATCH, 3, generator=g), "actions": torch.rand(BATCH, 1, generator=g) * 2 - 1,
            "rewards": torch.randn(BATCH, generator=g), "new_obs": torch.randn(BATCH, 3, generator=g),
            "terminateds": torch.zeros(BATCH, dtype=torch.bool), "truncateds": torch.zeros(BATCH, dtype=torch.bool),
            "weights": torch.ones(BATCH), "n_step": torch.ones(BATCH)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--updates", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(1)
    variants = {"rllib_learner": rllib_update(args.width), "plain": plain_update(args.width)}
    for update in variants.values():
        for _ in range(20):
            update()
    times = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, update in variants.items():
            start = time.perf_counter()
            for _ in range(args.updates):
                update()
            times[name].append((time.perf_counter() - start) / args.updates * 1e3)
    ratios = [r / p for r, p in zip(times["rllib_learner"], times["plain"])]
    print(json.dumps({
        "machine": f"{platform.machine()}, torch {torch.__version__}, 1 thread", "width": args.width,
        **{f"{name}_ms_median": round(statistics.median(v), 3) for name, v in times.items()},
        **{f"{name}_ms_range": [round(min(v), 3), round(max(v), 3)] for name, v in times.items()},
        "ratio_median": round(statistics.median(ratios), 2),
        "ratio_range": [round(min(ratios), 2), round(max(ratios), 2)],
    }, indent=1))


if __name__ == "__main__":
    main()
