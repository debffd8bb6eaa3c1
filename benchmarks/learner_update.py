"""One SAC learner update (critic + actor + temperature + target) on the paper's SimBa networks, in pure
PyTorch (no Ray): dense vs sparse, eager vs ``torch.compile``, and on CUDA one captured CUDA graph.

The update is the paper's SAC step on a DMC-humanoid shape (obs 67, act 21; actor width/4 x 1 block,
critic width x 2 blocks; batch 256; AdamW lr 1e-4, wd 1e-2; temperature Adam; Polyak tau 0.005),
written as a CleanRL-style function over this project's layers (``SimBa``, ``GaussianHead``,
``sparsify`` with Erdős–Rényi, ``polyak_update_``). Variants are timed interleaved, round by round;
medians and min-max over rounds, and sparse/dense ratios per round. It is the plain-PyTorch baseline of
the RLlib timings (``dmc_offpolicy_throughput.py``, ``rllib_sac_profile.py``); the CPU rows come from
this machine kind, the GPU rows need a CUDA device (run it there with ``--device cuda``).

    .venv/bin/python benchmarks/learner_update.py --widths 512 --rounds 3
    python benchmarks/learner_update.py --device cuda --widths 512 1024 2048 4096
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout without installing

from rllib_sparse.networks import GaussianHead, SimBa, linear_head, polyak_update_  # noqa: E402
from rllib_sparse.sparsity import sparsify  # noqa: E402
from timing import ms_per_call  # noqa: E402  (benchmarks/timing.py, beside this script)

OBS, ACT, BATCH = 67, 21, 256


class Agent(torch.nn.Module):
    """The paper's SAC networks: a Gaussian tanh actor, one critic (or twin critics), a temperature.

    Defaults are this benchmark's humanoid shape; ``rllib_sac_profile.py`` builds its plain-loop
    baseline from the same class with Pendulum's shape, plain MLPs and twin critics.
    """

    def __init__(self, width: int, sparsity: float, *, obs: int = OBS, act: int = ACT, network=SimBa,
                 actor_width: int | None = None, actor_depth: int = 1, critic_depth: int = 2, twin: bool = False):
        super().__init__()
        actor_width = actor_width or max(width // 4, 16)
        self.act_dim = act
        self.actor = torch.nn.Sequential(network(obs, actor_width, actor_depth), GaussianHead(actor_width, act))
        self.critics = torch.nn.ModuleList(
            torch.nn.ModuleList([network(obs, width, critic_depth, extra_dim=act), linear_head(width, 1)])
            for _ in range(2 if twin else 1))
        if sparsity:
            sparsify(self.actor, sparsity, seed=0)
            for i, critic in enumerate(self.critics):
                sparsify(critic, sparsity, seed=1 + i)
        self.log_alpha = torch.nn.Parameter(torch.tensor(math.log(0.01)))

    @staticmethod
    def q(obs, act, critics) -> torch.Tensor:
        """The (twin-minimum) Q value of ``critics``: the agent's own or its targets."""
        values = [head(encoder(obs, act)).squeeze(-1) for encoder, head in critics]
        return values[0] if len(values) == 1 else torch.minimum(*values)

    def policy(self, obs):
        mean, raw = self.actor(obs).chunk(2, dim=-1)
        log_std = -10.0 + 6.0 * (1.0 + torch.tanh(raw))
        u = mean + log_std.exp() * torch.randn_like(mean)
        action = torch.tanh(u)
        logp = (-0.5 * ((u - mean) / log_std.exp()) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        return action, logp - torch.log1p(-action.pow(2) + 1e-6).sum(-1)


def make_update(agent: Agent):
    targets = copy.deepcopy(agent.critics)
    targets.requires_grad_(False)
    critic_params = list(agent.critics.parameters())
    critic_opt = torch.optim.AdamW(critic_params, lr=1e-4, weight_decay=1e-2, eps=1e-8)
    actor_opt = torch.optim.AdamW(agent.actor.parameters(), lr=1e-4, weight_decay=1e-2, eps=1e-8)
    alpha_opt = torch.optim.Adam([agent.log_alpha], lr=1e-4, eps=1e-8)
    target_entropy = -agent.act_dim / 2

    def update(obs, act, rew, next_obs, done):
        alpha = agent.log_alpha.exp().detach()
        with torch.no_grad():
            next_act, next_logp = agent.policy(next_obs)
            q_next = agent.q(next_obs, next_act, targets) - alpha * next_logp
            target = rew + 0.99 * (1.0 - done) * q_next
        critic_loss = sum((head(encoder(obs, act)).squeeze(-1) - target).pow(2).mean()
                          for encoder, head in agent.critics)
        critic_opt.zero_grad(set_to_none=False)
        critic_loss.backward()
        critic_opt.step()
        for p in critic_params:
            p.requires_grad_(False)
        action, logp = agent.policy(obs)
        actor_loss = (alpha * logp - agent.q(obs, action, agent.critics)).mean()
        actor_opt.zero_grad(set_to_none=False)
        actor_loss.backward()
        actor_opt.step()
        for p in critic_params:
            p.requires_grad_(True)
        alpha_loss = -(agent.log_alpha * (logp.detach() + target_entropy)).mean()
        alpha_opt.zero_grad(set_to_none=False)
        alpha_loss.backward()
        alpha_opt.step()
        polyak_update_(agent.critics, targets, 0.005)
        return critic_loss.detach()

    return update


def batch(device):
    g = torch.Generator(device="cpu").manual_seed(0)
    tensors = (torch.randn(BATCH, OBS, generator=g), torch.rand(BATCH, ACT, generator=g) * 2 - 1,
               torch.randn(BATCH, generator=g), torch.randn(BATCH, OBS, generator=g), torch.zeros(BATCH))
    return tuple(t.to(device) for t in tensors)


def variant(kind: str, width: int, sparsity: float, device: str):
    """A callable doing one update, warmed up (compiled / captured where the variant says)."""
    torch.manual_seed(0)
    agent = Agent(width, sparsity).to(device)
    update, inputs = make_update(agent), batch(device)
    if kind == "compiled":
        update = torch.compile(update)
    for _ in range(3):
        update(*inputs)
    if kind == "cuda graph":
        graph = torch.cuda.CUDAGraph()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):
                update(*inputs)
        torch.cuda.current_stream().wait_stream(stream)
        with torch.cuda.graph(graph):
            update(*inputs)
        return agent, graph.replay
    return agent, lambda: update(*inputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--widths", type=int, nargs="+", default=[512])
    parser.add_argument("--sparsity", type=float, default=0.9)
    parser.add_argument("--kinds", nargs="+", default=None,
                        help="eager, compiled, cuda graph (default: eager and compiled; + cuda graph on CUDA)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10, help="updates per timing")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    kinds = args.kinds or (["eager", "compiled"] + (["cuda graph"] if args.device == "cuda" else []))

    from rllib_sparse.sparsity import max_masked_magnitude

    results = {}
    for width in args.widths:
        steps = {}
        for kind in kinds:
            for sparsity in (0.0, args.sparsity):
                steps[(kind, sparsity)] = variant(kind, width, sparsity, args.device)
        times = {key: [] for key in steps}
        for _ in range(args.rounds):
            for key, (_, step) in steps.items():
                times[key].append(ms_per_call(step, args.device, args.repeats))
        for kind in kinds:
            dense, sparse = times[(kind, 0.0)], times[(kind, args.sparsity)]
            ratios = [s / d for s, d in zip(sparse, dense)]
            agent = steps[(kind, args.sparsity)][0]
            results[f"width {width}, {kind}"] = {
                "dense ms": round(statistics.median(dense), 3), "sparse ms": round(statistics.median(sparse), 3),
                "sparse/dense median": round(statistics.median(ratios), 3),
                "sparse/dense min-max": [round(min(ratios), 3), round(max(ratios), 3)],
                "max |pruned weight| after all updates": max_masked_magnitude(agent),
            }
        if "eager" in kinds:
            for kind in kinds[1:] if kinds[0] == "eager" else []:
                for sparsity in (0.0, args.sparsity):
                    ratio = [e / k for e, k in zip(times[("eager", sparsity)], times[(kind, sparsity)])]
                    results[f"width {width}, {kind}"][f"speed-up vs eager (S={sparsity:g})"] = round(
                        statistics.median(ratio), 2)
    device = torch.cuda.get_device_name() if args.device == "cuda" else (platform.processor() or platform.machine())
    print(json.dumps({"device": f"{device}, {os.cpu_count()} cores, torch {torch.__version__}, "
                                f"{args.threads} thread(s)", "batch": BATCH, "rounds": args.rounds,
                      "updates per timing": args.repeats, "results": results}, indent=2))


if __name__ == "__main__":
    main()
