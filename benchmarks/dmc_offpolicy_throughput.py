"""End-to-end env steps/s of the paper's SAC and DDPG (SimBa actor 128x1, critic 512x2) through RLlib.

Builds each trial exactly as the shipped study files do (``tune_configs/dmc_hard_scaling*.yaml``: AdamW,
batch 256, 2 updates per env step, one critic, ...) on CPU with the env runner in the driver, for
every combination of algorithm x task x sparsity asked for. After a warm-up iteration that fills the
replay buffer past the learning start, each round runs one ``train()`` of ``--steps`` env steps per
variant, variants interleaved round by round; the median over rounds is reported with its spread
(min-max). One env step here is one agent decision (2 simulator steps: action repeat 2), with its 2
gradient updates. Results: docs/benchmarks.md, "SAC and DDPG on DeepMind Control through RLlib";
``rllib_sac_profile.py`` splits the per-update overhead they show into RLlib's stages.

    .venv/bin/python benchmarks/dmc_offpolicy_throughput.py
    .venv/bin/python benchmarks/dmc_offpolicy_throughput.py --tasks dmc/cheetah-run --rounds 3 --steps 200
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
FILES = {"SAC": "dmc_hard_scaling.yaml", "DDPG": "dmc_hard_scaling_ddpg.yaml"}


def build(algorithm: str, task: str, width: int, sparsity: float, steps: int, warmup: int):
    from rllib_sparse.sweep.rllib_runner import trial_config
    from rllib_sparse.sweep.spec import load_sweep

    spec = load_sweep(REPO / "tune_configs" / FILES[algorithm], [
        "resources.gpus_per_trial=0", f"grid.env=[{task}]", f"grid.width=[{width}]", f"grid.sparsity=[{sparsity}]",
        "grid.seed=[0]", f"training.num_steps_sampled_before_learning_starts={warmup}",
        f"training.random_warmup_steps={warmup}", f"reporting.min_sample_timesteps_per_iteration={steps}"])
    spec = spec.model_copy(update={"evaluation": None, "diagnostics": None})
    (point,) = spec.points()
    config = trial_config(spec, point, source=FILES[algorithm])
    return config.env_runners(num_env_runners=0).reporting(min_time_s_per_iteration=0).build_algo()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithms", nargs="+", default=["SAC", "DDPG"], choices=sorted(FILES))
    parser.add_argument("--tasks", nargs="+", default=["dmc/cheetah-run", "dmc/humanoid-run"])
    parser.add_argument("--sparsities", type=float, nargs="+", default=[0.0, 0.9])
    parser.add_argument("--width", type=int, default=512, help="critic width (the actor is a quarter, as SimBa)")
    parser.add_argument("--steps", type=int, default=200, help="env steps (decisions) per timed iteration")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import ray

    torch.set_num_threads(1)
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    warmup = 300  # > batch 256: learning starts within the warm-up iteration
    algos = {(a, t, s): build(a, t, args.width, s, args.steps, warmup)
             for a in args.algorithms for t in args.tasks for s in args.sparsities}
    sampled = {}
    for key, algo in algos.items():
        sampled[key] = 0
        while sampled[key] < warmup + args.steps:  # past the learning start, first-call allocations done
            sampled[key] = algo.train()["num_env_steps_sampled_lifetime"]
    rates: dict = {key: [] for key in algos}
    for round_ in range(args.rounds):
        for key, algo in algos.items():
            start = time.perf_counter()
            after = algo.train()["num_env_steps_sampled_lifetime"]
            rates[key].append((after - sampled[key]) / (time.perf_counter() - start))
            sampled[key] = after
        print(f"round {round_ + 1}/{args.rounds} done", flush=True)
    for algo in algos.values():
        algo.stop()
    ray.shutdown()

    table = {}
    for (a, t, s), values in rates.items():
        table[f"{a} {t} S={s:g}"] = {"env steps/s median": round(statistics.median(values), 2),
                                     "min": round(min(values), 2), "max": round(max(values), 2),
                                     "ms per update": round(1000 / (2 * statistics.median(values)), 1)}
    for a in args.algorithms:
        for t in args.tasks:
            dense = [k for k in rates if k[:2] == (a, t) and k[2] == 0.0]
            for key in (k for k in rates if k[:2] == (a, t) and k[2] > 0):
                if dense:  # time ratio per round (interleaved), then the median
                    ratios = [d / x for d, x in zip(rates[dense[0]], rates[key])]
                    table[f"{a} {t} sparse {key[2]:g} / dense time"] = {
                        "median": round(statistics.median(ratios), 3),
                        "min": round(min(ratios), 3), "max": round(max(ratios), 3)}
    result = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                         f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)",
              "critic width": args.width, "steps per iteration": args.steps, "rounds": args.rounds,
              "results": table}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
