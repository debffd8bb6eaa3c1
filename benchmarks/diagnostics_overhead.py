"""Cost of the paper's diagnostics during training, at the default interval (every 10 iterations).

Two copies of the same sparse PPO trial run side by side, iterations interleaved: one plain, one that
keeps its newest 1,024 training rows and computes the diagnostics (srank, dormant ratios, norms, 32
per-sample gradients for interference, per network) every ``--every`` iterations, as a sweep with
``diagnostics: {}`` does. Reported per width:

- ``diag s/call``: median time of one diagnostics call (both networks);
- ``share``: diagnostics time / training time of the same copy (calls every ``--every`` iterations);
- ``with/without``: total time of the copy with diagnostics (training + calls) / the plain copy's.

Target: overhead <= 5% of training time at the default interval.

    .venv/bin/python benchmarks/diagnostics_overhead.py
    .venv/bin/python benchmarks/diagnostics_overhead.py --widths 128 512 --iterations 20
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch


def _config(width: int, sparsity: float, batch: int):
    from ray.rllib.algorithms.ppo import PPOConfig

    from rllib_sparse import with_sparse_model

    config = (PPOConfig().environment("CartPole-v1")
              .env_runners(num_env_runners=0, num_envs_per_env_runner=4)
              .training(train_batch_size_per_learner=batch, minibatch_size=250, num_epochs=6, lr=3e-4)
              .reporting(min_time_s_per_iteration=0)
              .debugging(seed=0))
    return with_sparse_model(config, "simba", width=width, depth=2, sparsity=sparsity)


def measure(width: int, sparsity: float, iterations: int, every: int, rows: int, batch: int) -> dict:
    from rllib_sparse import learner_diagnostics, with_diagnostics

    plain = _config(width, sparsity, batch).build_algo()
    diagnosed = with_diagnostics(_config(width, sparsity, batch), rows=rows).build_algo()
    for algo in (plain, diagnosed):
        algo.train()  # warm-up
    learner_diagnostics(diagnosed)  # warm-up (first torch.func trace)
    train = {"plain": [], "diagnosed": []}
    calls = []
    for i in range(1, iterations + 1):
        for name, algo in (("plain", plain), ("diagnosed", diagnosed)):
            start = time.perf_counter()
            algo.train()
            train[name].append(time.perf_counter() - start)
        if i % every == 0:
            start = time.perf_counter()
            found = learner_diagnostics(diagnosed)
            calls.append(time.perf_counter() - start)
    plain.stop()
    diagnosed.stop()
    srank = {k: v for k, v in found["metrics"].items() if k.endswith("/srank")}
    return {
        "width": width, "sparsity": sparsity,
        "s/iter plain": round(statistics.median(train["plain"]), 3),
        "s/iter with rows kept": round(statistics.median(train["diagnosed"]), 3),
        "diag s/call": round(statistics.median(calls), 3),
        "share": round(sum(calls) / sum(train["diagnosed"]), 4),
        "with/without": round((sum(train["diagnosed"]) + sum(calls)) / sum(train["plain"]), 4),
        "srank": srank,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--sparsity", type=float, default=0.9)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--rows", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=2000)
    args = parser.parse_args()

    import ray

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
                         f"{torch.get_num_threads()} threads",
              "settings": vars(args),
              "rows": [measure(w, args.sparsity, args.iterations, args.every, args.rows, args.batch)
                       for w in args.widths]}
    ray.shutdown()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
