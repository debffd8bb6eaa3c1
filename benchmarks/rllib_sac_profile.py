"""Where an RLlib SAC update's time goes on CPU, and what the Learner fast path (``learner.compile``) changes.

SAC on Pendulum-v1 (env runner in the driver, 1 torch thread, batch 256, one update per env step, twin
Q, uniform ``EpisodeReplayBuffer``) with the networks issue #14 names: plain MLPs (actor 128x1, critic
512x2) and the paper's SimBa (same sizes), dense and 90% sparse. Each variant is built once, trained
past its learning start, then timed for ``--steps`` env steps per round, variants interleaved round by
round (median and min-max over rounds). One extra profiled iteration per variant splits the step
into RLlib's stages (cProfile's cumulative time, so the split carries the profiler's overhead; the
shares, not the absolute numbers, are the finding).

    .venv/bin/python benchmarks/rllib_sac_profile.py
    .venv/bin/python benchmarks/rllib_sac_profile.py --models mlp --sparsities 0 --compile off forward_train
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import statistics
import time

import torch

#: Stage -> (file suffix, function name) whose cumulative time is that stage's.
STAGES = {
    "replay sampling": ("episode_replay_buffer.py", "sample"),
    "learner connector": ("learner_connector_pipeline.py", "__call__"),
    "forward_train": ("torch_rl_module.py", "forward_train"),
    "losses": ("rllib/diagnostics.py", "compute_losses"),  # our mixin, around RLlib's
    "backward": ("autograd/__init__.py", "backward"),
    "optimizer step": ("torch_learner.py", "apply_gradients"),
    "target update": ("learners.py", "after_gradient_based_update"),
    "env step + action": ("single_agent_env_runner.py", "sample"),
    "whole update (Learner.update)": ("learner.py", "update"),
}


def build(model: str, sparsity: float, compile_what: str, steps: int):
    from rllib_sparse.networks import SparseModelConfig
    from rllib_sparse.rllib import algorithm_config, with_fast_learner, with_sparse_model

    config = (algorithm_config("SAC").environment("Pendulum-v1").env_runners(num_env_runners=0)
              .training(train_batch_size_per_learner=256, num_steps_sampled_before_learning_starts=300,
                        replay_buffer_config={"type": "EpisodeReplayBuffer", "capacity": 100_000}, twin_q=True)
              .reporting(min_sample_timesteps_per_iteration=steps, min_time_s_per_iteration=0))
    config = with_fast_learner(config, compile_what)
    sizes = SparseModelConfig.parse({"name": model, "actor": {"width": 128, "depth": 1},
                                     "critic": {"width": 512, "depth": 2}, "sparsity": sparsity})
    return with_sparse_model(config, sizes, algorithm="SAC").build_algo()


def stage_times(profile: cProfile.Profile) -> dict[str, float]:
    stats = pstats.Stats(profile).stats  # (file, line, name) -> (cc, nc, tt, ct, callers)
    out = {}
    for stage, (suffix, name) in STAGES.items():
        out[stage] = max((ct for (file, _, fn), (_, _, _, ct, _) in stats.items()
                          if fn == name and file.endswith(suffix)), default=0.0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mlp", "simba"])
    parser.add_argument("--sparsities", type=float, nargs="+", default=[0.0, 0.9])
    parser.add_argument("--compile", nargs="+", default=["off"], choices=["off", "forward_train", "update"])
    parser.add_argument("--steps", type=int, default=100, help="env steps (= updates) per timed round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import ray

    torch.set_num_threads(1)
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    variants = [(m, s, c) for m in args.models for s in args.sparsities for c in args.compile]
    algos = {}
    for variant in variants:
        algo = build(*variant, args.steps)
        while algo.train()["num_env_steps_sampled_lifetime"] < 300 + 2 * args.steps:  # learning, compiled
            pass
        algos[variant] = algo
        print(f"built and warmed up {variant}", flush=True)
    times = {v: [] for v in variants}
    for round_ in range(args.rounds):
        for variant, algo in algos.items():
            start = time.perf_counter()
            algo.train()
            times[variant].append((time.perf_counter() - start) / args.steps * 1e3)
        print(f"round {round_ + 1}/{args.rounds} done", flush=True)
    stages = {}
    for variant, algo in algos.items():
        profile = cProfile.Profile()
        profile.enable()
        algo.train()
        profile.disable()
        stages[variant] = {k: v / args.steps * 1e3 for k, v in stage_times(profile).items()}
        algo.stop()

    print(f"\n{platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread, "
          f"{args.steps} env steps (1 update each) per round, {args.rounds} rounds")
    print("| model | sparsity | compile | ms per env step + update, median (min-max) |")
    print("|---|---|---|---|")
    for variant, values in times.items():
        print(f"| {variant[0]} | {variant[1]:g} | {variant[2]} | {statistics.median(values):.1f} "
              f"({min(values):.1f}-{max(values):.1f}) |")
    print("\nProfiled iteration, ms per env step (cProfile cumulative, profiler overhead included):")
    print("| model | sparsity | compile | " + " | ".join(STAGES) + " |")
    print("|---|---|---|" + "---|" * len(STAGES))
    for variant, split in stages.items():
        print(f"| {variant[0]} | {variant[1]:g} | {variant[2]} | "
              + " | ".join(f"{split[s]:.1f}" for s in STAGES) + " |")


if __name__ == "__main__":
    main()
