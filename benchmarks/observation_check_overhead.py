"""Cost of checking every float observation for NaN and infinities (``rllib_sparse.envs.finite``).

The same env is stepped with random actions plain and wrapped in ``FiniteObservations``, interleaved
round by round (a fresh env per round, the same seed); the script prints microseconds per step of each,
the wrapped/plain ratio per round, and the median and min-max over rounds. Results: docs/benchmarks.md,
"Observation check".

    .venv/bin/python benchmarks/observation_check_overhead.py
    .venv/bin/python benchmarks/observation_check_overhead.py --envs Pendulum-v1 --rounds 9 --steps 20000
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import gymnasium as gym

from rllib_sparse.envs.finite import FiniteObservations


def us_per_step(env_id: str, checked: bool, steps: int) -> float:
    env = gym.make(env_id)
    if checked:
        env = FiniteObservations(env, env_id)
    env.reset(seed=0)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(steps)]
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    elapsed = time.perf_counter() - start
    env.close()
    return elapsed / steps * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=["CartPole-v1", "Pendulum-v1", "HalfCheetah-v5"])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=10_000)
    args = parser.parse_args()
    rows = []
    for env_id in args.envs:
        plain, checked, ratios = [], [], []
        for _ in range(args.rounds):
            p, c = us_per_step(env_id, False, args.steps), us_per_step(env_id, True, args.steps)
            plain.append(p)
            checked.append(c)
            ratios.append(c / p)
        row = {"env": env_id, "plain_us": round(statistics.median(plain), 2),
               "checked_us": round(statistics.median(checked), 2),
               "added_us": round(statistics.median(c - p for c, p in zip(checked, plain)), 2),
               "ratio_median": round(statistics.median(ratios), 3),
               "ratio_min": round(min(ratios), 3), "ratio_max": round(max(ratios), 3)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(json.dumps({"machine": platform.machine(), "python": platform.python_version(),
                      "rounds": args.rounds, "steps": args.steps}))


if __name__ == "__main__":
    main()
