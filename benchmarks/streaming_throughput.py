"""Env steps per second of Stream AC(λ) on Walker2d-v5: this project's trial runner vs a plain PyTorch loop.

Two loops, the same networks (2 hidden layers, parameter-free LayerNorm, LeakyReLU), the same settings
(stream-x's: ObGD lr 1, κ 3/2, γ 0.99, λ 0.8, entropy 0.01), the same normalisers' math, one env step
and one update per step, one thread:

- ``ours``: ``StreamTrialRunner.train()`` — the sweep's trial runner, the way a trial runs under Tune
  (runner → ``StreamTrainer`` → ``StreamAC`` → ``ObGD`` on masked layers), one iteration per round;
- ``plain``: the stream-x way, written flat in this file: ``nn.Sequential`` networks, an ObGD step as a
  Python loop over parameters, static masks applied by multiplying weights and gradients by hand.

Widths 128 and 1024, dense vs static 90% sparse (Erdős–Rényi). Variants are timed interleaved, round by
round; medians and min–max over rounds; the ours/plain ratio per round (target ≥ 0.8).

    .venv/bin/python benchmarks/streaming_throughput.py --steps 500 --rounds 3
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout without installing

from rllib_sparse.sparsity import random_mask  # noqa: E402
from rllib_sparse.sparsity.allocation import erdos_renyi_densities  # noqa: E402
from rllib_sparse.sweep.spec import load_sweep  # noqa: E402
from rllib_sparse.sweep.stream_runner import StreamTrialRunner  # noqa: E402

SWEEP = Path(__file__).resolve().parents[1] / "tune_configs" / "streaming_small.yaml"
GAMMA, LAMDA, LR, ENTROPY = 0.99, 0.8, 1.0, 0.01


# --------------------------------------------------------------------------------------- the plain loop


def body(obs: int, width: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(obs, width), nn.LayerNorm(width, elementwise_affine=False), nn.LeakyReLU(),
                         nn.Linear(width, width), nn.LayerNorm(width, elementwise_affine=False), nn.LeakyReLU())


class PlainActor(nn.Module):
    def __init__(self, obs, act, width):
        super().__init__()
        self.body, self.mu, self.std = body(obs, width), nn.Linear(width, act), nn.Linear(width, act)

    def forward(self, x):
        h = self.body(x)
        return torch.distributions.Normal(self.mu(h), nn.functional.softplus(self.std(h)) + 1e-6)


class PlainCritic(nn.Module):
    def __init__(self, obs, width):
        super().__init__()
        self.body, self.v = body(obs, width), nn.Linear(width, 1)

    def forward(self, x):
        return self.v(self.body(x)).squeeze(-1)


def masks_for(net: nn.Module, sparsity: float, seed: int) -> dict[nn.Parameter, torch.Tensor]:
    """Erdős–Rényi masks of the Linear weights, applied to the weights once (the plain way)."""
    layers = {name: m for name, m in net.named_modules() if isinstance(m, nn.Linear)}
    densities = erdos_renyi_densities({n: tuple(m.weight.shape) for n, m in layers.items()}, sparsity)
    masks = {}
    with torch.no_grad():
        for name, layer in layers.items():
            mask = random_mask(tuple(layer.weight.shape), densities[name], seed, name).float()
            layer.weight.mul_(mask)
            masks[layer.weight] = mask
    return masks


def obgd_step(params, traces, delta: float, kappa: float, reset: bool, masks) -> None:
    """ObGD as a loop over parameters: traces decay and add the (masked) gradient; bounded step."""
    z_sum = 0.0
    for p, z in zip(params, traces):
        if p in masks:
            p.grad.mul_(masks[p])
        z.mul_(GAMMA * LAMDA).add_(p.grad)
        z_sum += z.abs().sum().item()
    bound = LR * kappa * max(abs(delta), 1.0) * z_sum
    step = LR / bound if bound > 1.0 else LR
    with torch.no_grad():
        for p, z in zip(params, traces):
            p.add_(z, alpha=step * delta)
            if reset:
                z.zero_()


class Running:
    """Welford mean and sample variance, one value at a time (numpy)."""

    def __init__(self, shape):
        self.n, self.mean, self.m2 = 0, np.zeros(shape), np.zeros(shape)

    def update(self, x):
        self.n += 1
        d = x - self.mean
        self.mean = self.mean + d / self.n
        self.m2 = self.m2 + d * (x - self.mean)

    @property
    def var(self):
        return self.m2 / (self.n - 1) if self.n > 1 else np.ones_like(self.mean)


class PlainLoop:
    def __init__(self, width: int, sparsity: float, seed: int = 0):
        torch.manual_seed(seed)
        self.env = gym.make("Walker2d-v5")
        obs_dim, act_dim = self.env.observation_space.shape[0], self.env.action_space.shape[0]
        self.actor, self.critic = PlainActor(obs_dim, act_dim, width), PlainCritic(obs_dim, width)
        self.masks = {}
        if sparsity:
            self.masks |= masks_for(self.actor, sparsity, seed) | masks_for(self.critic, sparsity, seed + 1)
        self.pa, self.pc = list(self.actor.parameters()), list(self.critic.parameters())
        self.za, self.zc = [torch.zeros_like(p) for p in self.pa], [torch.zeros_like(p) for p in self.pc]
        self.obs_stats, self.ret_stats, self.ret = Running(obs_dim), Running(()), 0.0
        self.obs = self.norm(self.env.reset(seed=seed)[0])

    def norm(self, x):
        self.obs_stats.update(x)
        return torch.as_tensor((x - self.obs_stats.mean) / np.sqrt(self.obs_stats.var + 1e-8), dtype=torch.float32)

    def scale(self, r, done):
        self.ret = self.ret * GAMMA * (1 - done) + r
        self.ret_stats.update(self.ret)
        return r / math.sqrt(float(self.ret_stats.var) + 1e-8)

    def train(self, steps: int) -> None:
        low, high = self.env.action_space.low, self.env.action_space.high
        for _ in range(steps):
            s = self.obs
            with torch.no_grad():
                dist = self.actor(s)
                a = dist.sample()
            raw, r, term, trunc, _ = self.env.step(np.clip(a.numpy(), low, high))
            s2 = self.norm(raw)
            done = term or trunc
            r = self.scale(float(r), done)
            v = self.critic(s)
            with torch.no_grad():
                v2 = 0.0 if term else float(self.critic(s2))
            delta = r + GAMMA * v2 - float(v.detach())
            for p in self.pc:
                p.grad = None
            v.backward()
            obgd_step(self.pc, self.zc, delta, 2.0, done, self.masks)
            dist = self.actor(s)
            f = dist.log_prob(a).sum() + ENTROPY * float(np.sign(delta)) * dist.entropy().sum()
            for p in self.pa:
                p.grad = None
            f.backward()
            obgd_step(self.pa, self.za, delta, 3.0, done, self.masks)
            self.obs = self.norm(self.env.reset()[0]) if done else s2


# --------------------------------------------------------------------------------------- ours


def our_runner(width: int, init: str, steps: int) -> StreamTrialRunner:
    spec = load_sweep(SWEEP, [f"grid.width=[{width}]", f"grid.training.init=[{init}]",
                              f"reporting.min_sample_timesteps_per_iteration={steps}", "diagnostics=null"])
    runner = StreamTrialRunner(spec, spec.points()[0])
    runner.build()
    return runner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[128, 1024])
    parser.add_argument("--steps", type=int, default=500, help="env steps per timed round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)

    runners = {}
    for width in args.widths:
        for init, sparsity in (("dense", 0.0), ("static_mask", 0.9)):
            plain = PlainLoop(width, sparsity)
            runners[(width, init, "plain")] = lambda plain=plain: plain.train(args.steps)
            ours = our_runner(width, init, args.steps)
            runners[(width, init, "ours")] = ours.train
            for run in (runners[(width, init, "plain")], runners[(width, init, "ours")]):
                run()  # warm-up round: first episodes, allocator
    times = {v: [] for v in runners}
    for round_ in range(args.rounds):
        for variant, run in runners.items():
            start = time.perf_counter()
            run()
            times[variant].append(args.steps / (time.perf_counter() - start))
        print(f"round {round_ + 1}/{args.rounds} done", flush=True)

    print(f"\n{platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread, Walker2d-v5, "
          f"{args.steps} env steps per round, {args.rounds} rounds; env steps/s median (min-max)")
    print("| width | init | plain loop | ours (trial runner) | ours / plain |")
    print("|---|---|---|---|---|")
    for width in args.widths:
        for init in ("dense", "static_mask"):
            plain, ours = times[(width, init, "plain")], times[(width, init, "ours")]
            ratios = [o / p for o, p in zip(ours, plain)]
            print(f"| {width} | {init} | {statistics.median(plain):.0f} ({min(plain):.0f}–{max(plain):.0f}) | "
                  f"{statistics.median(ours):.0f} ({min(ours):.0f}–{max(ours):.0f}) | "
                  f"{statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f}) |")


if __name__ == "__main__":
    main()
