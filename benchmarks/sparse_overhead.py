"""Sparse vs dense cost of the same SimBa network: learner update step and inference forward.

Measures, side by side in one process (dense and sparse timings interleaved, medians reported):
  (a) a learner update: forward + backward + AdamW step on a batch of 256 (what RLlib's Learner does),
      with torch's default CPU AdamW (a per-tensor loop, what RLlib's Learners get) and the fused one;
  (b) env-runner inference: a ``torch.no_grad()`` forward at batch 1 and batch 256.
Target: sparse / dense <= 1.05 for both.

    .venv/bin/python benchmarks/sparse_overhead.py                 # widths 256..4096, sparsity 0.5/0.9
    .venv/bin/python benchmarks/sparse_overhead.py --widths 256 1024 --repeats 5
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import time

import torch

from rllib_sparse.networks import SimBa, linear_head
from rllib_sparse.sparsity import sparsify

OBS_DIM, ACT_DIM = 67, 21  # DMC humanoid: the critic sees (s, a)


class Critic(torch.nn.Module):
    def __init__(self, width: int, depth: int):
        super().__init__()
        self.encoder = SimBa(OBS_DIM, width, depth, extra_dim=ACT_DIM)
        self.head = linear_head(width, 1)

    def forward(self, obs, act):
        return self.head(self.encoder(obs, act))


def update_step(net, opt, obs, act, target):
    loss = (net(obs, act).squeeze(-1) - target).pow(2).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


OPTIMIZERS = {
    # torch's default on CPU tensors is the per-tensor loop (what RLlib's Learners get on CPU)
    "adamw": lambda params: torch.optim.AdamW(params, lr=1e-4, weight_decay=1e-2),
    "adamw_fused": lambda params: torch.optim.AdamW(params, lr=1e-4, weight_decay=1e-2, fused=True),
}


def measure(width: int, depth: int, sparsities: list[float], repeats: int, optimizers: list[str]) -> list[dict]:
    torch.manual_seed(0)
    dense = Critic(width, depth)
    nets = {0.0: dense}
    for s in sparsities:
        nets[s] = copy.deepcopy(dense)
        sparsify(nets[s], s, seed=0)
    opts = {(name, s): OPTIMIZERS[name](n.parameters()) for name in optimizers for s, n in nets.items()}
    obs, act, target = torch.randn(256, OBS_DIM), torch.randn(256, ACT_DIM), torch.randn(256)
    obs1, act1 = obs[:1], act[:1]

    def infer(net, o, a):
        with torch.no_grad():
            net(o, a)

    jobs = {f"update_b256_{name}": (lambda s, name=name: update_step(nets[s], opts[(name, s)], obs, act, target))
            for name in optimizers}
    jobs |= {
        "infer_b1": lambda s: infer(nets[s], obs1, act1),
        "infer_b256": lambda s: infer(nets[s], obs, act),
    }
    times = {(job, s): [] for job in jobs for s in nets}
    for job, fn in jobs.items():
        inner = 20 if job == "infer_b1" else 1  # batch-1 forwards are too short to time one by one
        for s in nets:  # warm-up
            for _ in range(2):
                fn(s)
        for _ in range(repeats):  # interleave dense and sparse so that machine noise hits both
            for s in nets:
                times[(job, s)].append(sum(timed(lambda: fn(s), inner)) / inner)  # noqa: B023 - called at once
    rows = []
    params = sum(p.numel() for p in dense.parameters())
    for job in jobs:
        base = statistics.median(times[(job, 0.0)])
        for s in sparsities:
            med = statistics.median(times[(job, s)])
            rows.append({"width": width, "depth": depth, "params": params, "job": job, "sparsity": s,
                         "dense_ms": base * 1e3, "sparse_ms": med * 1e3, "ratio": med / base})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096])
    parser.add_argument("--depth", type=int, default=1)
    parser.add_argument("--sparsities", type=float, nargs="+", default=[0.5, 0.9])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS), choices=list(OPTIMIZERS))
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    print("| width | params (dense) | measurement | sparsity | dense ms | sparse ms | sparse/dense |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for width in args.widths:
        for row in measure(width, args.depth, args.sparsities, args.repeats, args.optimizers):
            rows.append(row)
            print(f"| {row['width']} | {row['params']:,} | {row['job']} | {row['sparsity']} | "
                  f"{row['dense_ms']:.2f} | {row['sparse_ms']:.2f} | {row['ratio']:.3f} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
