"""Atari throughput: env-runner sampling by env path, and end-to-end PPO with a dense vs sparse CNN.

Measures, in one process:
  (a) env steps/s of ``SingleAgentEnvRunner.sample()`` for three env paths, with 1, 4 and 8 envs per
      env runner, with the policy a 90%-sparse Nature-CNN (env stepping + RLlib's episode bookkeeping +
      connectors + the CNN forward) and with random actions (no forward, no connectors):
      - ``rllib-wrapper``: RLlib's ``wrap_atari_for_new_api_stack`` (84x84, 4 frames) under gymnasium's
        SyncVectorEnv, the per-env gymnasium wrapper path RLlib documents;
      - ``ours-per-env``: our gymnasium path (``vectorized: false``);
      - ``ours-native``: ale-py's native ``AtariVectorEnv`` under our training-signal wrapper (the default).
      Paths are interleaved round by round; the median of the rounds is reported.
  (b) end-to-end PPO env steps/s (sampling + 4 epochs of updates) with a dense and a 90%-sparse
      Nature-CNN of the same shape, iterations interleaved, medians of the timed iterations.
Targets: ours-native >= 2x rllib-wrapper at 8 envs; sparse/dense end-to-end time <= 1.05.

    .venv/bin/python benchmarks/atari_throughput.py
    .venv/bin/python benchmarks/atari_throughput.py --envs 8 --rounds 3 --iterations 4
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import gymnasium as gym
import torch

GAME = "ALE/Breakout-v5"


def _rllib_wrapper_env(env_config):
    import ale_py
    from ray.rllib.env.wrappers.atari_wrappers import wrap_atari_for_new_api_stack

    gym.register_envs(ale_py)
    env = gym.make(GAME, frameskip=1, repeat_action_probability=0.25)
    return wrap_atari_for_new_api_stack(env, dim=84, framestack=4)


def _config(path: str, num_envs: int, sparsity: float, batch: int):
    from ray import tune
    from ray.rllib.algorithms.ppo import PPOConfig

    from rllib_sparse import with_atari, with_sparse_model

    config = PPOConfig().env_runners(num_env_runners=0, num_envs_per_env_runner=num_envs)
    if path == "rllib-wrapper":
        tune.register_env("rllib-wrapper-breakout", _rllib_wrapper_env)
        config = config.environment("rllib-wrapper-breakout")
    else:
        config = with_atari(config.environment(GAME, env_config={"vectorized": path == "ours-native"}))
    config = (config.training(train_batch_size_per_learner=batch, minibatch_size=256, num_epochs=4, lr=2.5e-4)
              .rl_module(model_config={"vf_share_layers": True})
              .reporting(min_time_s_per_iteration=0)
              .debugging(seed=0))
    return with_sparse_model(config, "nature_cnn", width=1, sparsity=sparsity)


def sampling(envs: list[int], rounds: int, steps: int) -> dict:
    paths = ["rllib-wrapper", "ours-per-env", "ours-native"]
    runners = {}
    for n in envs:
        for path in paths:
            algo = _config(path, n, 0.9, 256).build_algo()
            algo.env_runner.sample(num_timesteps=steps // 4, random_actions=False)  # warm-up
            runners[(path, n)] = algo
    table = {}
    for policy in ("cnn", "random"):
        rates: dict = {key: [] for key in runners}
        for _ in range(rounds):
            for key, algo in runners.items():
                start = time.perf_counter()
                # A random-action episode lacks the policy's outputs: never continue a policy episode with it.
                random = policy == "random"
                algo.env_runner.sample(num_timesteps=steps, random_actions=random, force_reset=random)
                rates[key].append(steps / (time.perf_counter() - start))
        for path, n in runners:
            table[f"{policy} policy: {path} x{n}"] = round(statistics.median(rates[(path, n)]))
        for n in envs:
            table[f"{policy} policy: native/wrapper x{n}"] = round(
                table[f"{policy} policy: ours-native x{n}"] / table[f"{policy} policy: rllib-wrapper x{n}"], 2)
    for algo in runners.values():
        algo.stop()
    return table


def end_to_end(num_envs: int, iterations: int, batch: int) -> dict:
    algos = {name: _config("ours-native", num_envs, sparsity, batch).build_algo()
             for name, sparsity in (("dense", 0.0), ("sparse-0.9", 0.9))}
    for algo in algos.values():
        algo.train()  # warm-up: first-call allocations, the env's reset
    times: dict = {name: [] for name in algos}
    for _ in range(iterations):
        for name, algo in algos.items():
            start = time.perf_counter()
            algo.train()
            times[name].append(time.perf_counter() - start)
    for algo in algos.values():
        algo.stop()
    med = {name: statistics.median(t) for name, t in times.items()}
    return {"s/iter dense": med["dense"], "s/iter sparse-0.9": med["sparse-0.9"],
            "env steps/s dense": batch / med["dense"], "env steps/s sparse-0.9": batch / med["sparse-0.9"],
            "sparse/dense time": med["sparse-0.9"] / med["dense"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2048, help="env steps per sampling measurement")
    parser.add_argument("--iterations", type=int, default=3, help="timed PPO iterations per model")
    parser.add_argument("--batch", type=int, default=1024, help="PPO train batch (8 envs x 128 steps)")
    parser.add_argument("--skip-e2e", action="store_true")
    args = parser.parse_args()

    import ray

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    result = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                         f"torch {torch.__version__}, {torch.get_num_threads()} threads"}
    result["sampling env steps/s"] = sampling(args.envs, args.rounds, args.steps)
    if not args.skip_e2e:
        result["end-to-end PPO (8 envs, native path)"] = end_to_end(8, args.iterations, args.batch)
    ray.shutdown()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
