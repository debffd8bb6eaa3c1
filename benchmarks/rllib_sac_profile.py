"""Where an RLlib SAC update's time goes on CPU, against a plain PyTorch loop doing the same work.

SAC on Pendulum-v1 (env runner in the driver, 1 torch thread, batch 256, one update per env step, twin
Q, uniform episode replay) with the SimBa default sizes (actor 128x1, critic 512x2) as plain MLPs
and as the paper's SimBa, dense and 90% sparse. RLlib variants differ in replay sampling
(``fast``: our ``SparseSAC`` with ``FastEpisodeReplayBuffer``; ``rllib``: RLlib's ``SAC`` and its own
``EpisodeReplayBuffer``) and Learner compile (``learner.compile``). The ``plain`` variant is the same
step without RLlib: gymnasium's Pendulum, a numpy ring buffer, and the SAC update of
``learner_update.py`` (same layer types, sizes, sparsity, twin critics, in-place Polyak target).

Each variant is built once, trained past its learning start, then timed for ``--steps`` env steps per
round, variants interleaved round by round (median and min-max over rounds; ratios to the plain loop
per round). One extra profiled iteration per RLlib variant splits the step into RLlib's stages
(cProfile's cumulative time, so the split carries the profiler's overhead; the shares, not the
absolute numbers, are the finding).

    .venv/bin/python benchmarks/rllib_sac_profile.py
    .venv/bin/python benchmarks/rllib_sac_profile.py --models mlp --sparsities 0 --replay rllib fast
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # learner_update.py, beside this script

#: Stage -> (file suffix, function name) whose cumulative time is that stage's.
STAGES = {
    "replay sampling": ("episode_replay_buffer.py", "sample"),
    "learner connector": ("learner_connector_pipeline.py", "__call__"),
    "forward_train": ("torch_rl_module.py", "forward_train"),
    "losses": ("rllib/core/diagnostics.py", "compute_losses"),  # our mixin, around RLlib's
    "backward": ("autograd/__init__.py", "backward"),
    "optimizer step": ("torch_learner.py", "apply_gradients"),
    "target update": ("core/learner.py", "after_gradient_based_update"),
    "env step + action": ("single_agent_env_runner.py", "sample"),
    "whole update (Learner.update)": ("learner.py", "update"),
}


WARMUP_STEPS, BATCH, ACTOR, CRITIC = 300, 256, (128, 1), (512, 2)


class PlainLoop:
    """One env step, one uniform sample of 256 transitions, one SAC update: no framework in between."""

    def __init__(self, model: str, sparsity: float):
        import gymnasium as gym

        from learner_update import Agent, make_update
        from rllib_sparse.networks import MLP, SimBa

        torch.manual_seed(0)
        self.env = gym.make("Pendulum-v1")
        obs_dim, act_dim = self.env.observation_space.shape[0], self.env.action_space.shape[0]
        self.agent = Agent(CRITIC[0], sparsity, obs=obs_dim, act=act_dim, network={"mlp": MLP, "simba": SimBa}[model],
                           actor_width=ACTOR[0], actor_depth=ACTOR[1], critic_depth=CRITIC[1], twin=True)
        self.update = make_update(self.agent)
        self.scale = float(self.env.action_space.high[0])
        capacity = 100_000
        shapes = {"obs": (obs_dim,), "act": (act_dim,), "rew": (), "next_obs": (obs_dim,), "done": ()}
        self.columns = {key: np.zeros((capacity, *shape), np.float32) for key, shape in shapes.items()}
        self.size, self.rng = 0, np.random.default_rng(0)
        self.obs, _ = self.env.reset(seed=0)
        self.train(WARMUP_STEPS)

    def train(self, steps: int) -> None:
        for _ in range(steps):
            with torch.no_grad():
                action, _ = self.agent.policy(torch.as_tensor(self.obs, dtype=torch.float32)[None])
            action = action[0].numpy()
            next_obs, reward, terminated, truncated, _ = self.env.step(action * self.scale)
            i = self.size % len(self.columns["rew"])
            for key, value in zip(self.columns, (self.obs, action, reward, next_obs, terminated)):
                self.columns[key][i] = value
            self.size += 1
            self.obs = self.env.reset()[0] if terminated or truncated else next_obs
            if self.size >= WARMUP_STEPS:
                idx = self.rng.integers(min(self.size, len(self.columns["rew"])), size=BATCH)
                self.update(*(torch.from_numpy(column[idx]) for column in self.columns.values()))


def build(model: str, sparsity: float, compile_what: str, replay: str, steps: int):
    from ray.rllib.algorithms.sac import SAC

    from rllib_sparse.networks import SparseModelConfig
    from rllib_sparse.rllib import algorithm_config, with_fast_learner, with_sparse_model

    config = (algorithm_config("SAC").environment("Pendulum-v1").env_runners(num_env_runners=0)
              .training(train_batch_size_per_learner=BATCH, num_steps_sampled_before_learning_starts=WARMUP_STEPS,
                        replay_buffer_config={"type": "EpisodeReplayBuffer", "capacity": 100_000}, twin_q=True)
              .reporting(min_sample_timesteps_per_iteration=steps, min_time_s_per_iteration=0))
    config = with_fast_learner(config, compile_what)
    if replay == "rllib":  # RLlib's own SAC class, so RLlib's own EpisodeReplayBuffer
        config.algo_class = SAC
    sizes = SparseModelConfig.parse({"name": model, "actor": {"width": ACTOR[0], "depth": ACTOR[1]},
                                     "critic": {"width": CRITIC[0], "depth": CRITIC[1]}, "sparsity": sparsity})
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
    parser.add_argument("--replay", nargs="+", default=["fast", "rllib"], choices=["fast", "rllib"])
    parser.add_argument("--no-plain", action="store_true", help="leave out the plain PyTorch loop")
    parser.add_argument("--steps", type=int, default=100, help="env steps (= updates) per timed round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import ray

    torch.set_num_threads(1)
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    # A variant: (model, sparsity, loop), loop = "plain" or "rllib, replay R, compile C".
    loops = {} if args.no_plain else {"plain": None}
    loops |= {f"rllib, replay {r}, compile {c}": (c, r) for r in args.replay for c in args.compile}
    runners = {}
    for model in args.models:
        for sparsity in args.sparsities:
            for loop, rllib in loops.items():
                if rllib is None:
                    plain = PlainLoop(model, sparsity)
                    plain.train(2 * args.steps)
                    runners[(model, sparsity, loop)] = lambda plain=plain: plain.train(args.steps)
                else:
                    algo = build(model, sparsity, *rllib, args.steps)
                    while algo.train()["num_env_steps_sampled_lifetime"] < WARMUP_STEPS + 2 * args.steps:
                        pass  # learning, and compiled where asked
                    runners[(model, sparsity, loop)] = algo
                print(f"built and warmed up {model}, sparsity {sparsity:g}, {loop}", flush=True)
    times = {v: [] for v in runners}
    for round_ in range(args.rounds):
        for variant, runner in runners.items():
            start = time.perf_counter()
            runner() if callable(runner) else runner.train()
            times[variant].append((time.perf_counter() - start) / args.steps * 1e3)
        print(f"round {round_ + 1}/{args.rounds} done", flush=True)
    stages = {}
    for variant, runner in runners.items():
        if callable(runner):
            continue
        profile = cProfile.Profile()
        profile.enable()
        runner.train()
        profile.disable()
        stages[variant] = {k: v / args.steps * 1e3 for k, v in stage_times(profile).items()}
        runner.stop()

    print(f"\n{platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread, "
          f"{args.steps} env steps (1 update each) per round, {args.rounds} rounds")
    print("| model | sparsity | loop | ms per env step + update, median (min-max) | / plain loop, median (min-max) |")
    print("|---|---|---|---|---|")
    for (model, sparsity, loop), values in times.items():
        plain = times.get((model, sparsity, "plain"))
        ratio = "" if plain is None else _spread([v / p for v, p in zip(values, plain)], "{:.2f}")
        print(f"| {model} | {sparsity:g} | {loop} | {_spread(values, '{:.1f}')} | {ratio} |")
    print("\nProfiled iteration, ms per env step (cProfile cumulative, profiler overhead included):")
    print("| model | sparsity | loop | " + " | ".join(STAGES) + " |")
    print("|---|---|---|" + "---|" * len(STAGES))
    for (model, sparsity, loop), split in stages.items():
        print(f"| {model} | {sparsity:g} | {loop} | " + " | ".join(f"{split[s]:.1f}" for s in STAGES) + " |")


def _spread(values: list[float], fmt: str) -> str:
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


if __name__ == "__main__":
    main()
