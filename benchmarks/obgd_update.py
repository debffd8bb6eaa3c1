"""The per-call costs behind ObGD's streaming fast path, each against the alternative in the same run:

- the traces' L1 norm: ``torch._foreach_norm(traces, 1)`` vs ``abs().sum()`` per tensor (what ObGD uses);
- the update: ``ObGD.step`` (torch.optim's wrapper: hooks, a profiler range) vs ``ObGD.update``;
- clearing gradients: ``Optimizer.zero_grad()`` vs setting ``.grad = None`` (what StreamAC does).

On stream-x's critic (Walker2d shapes: 17 inputs, 2 LayerNorm layers) at widths 128 and 1024, one
thread; microseconds per call, median (min–max) over rounds, interleaved.

    .venv/bin/python benchmarks/obgd_update.py --rounds 5
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from rllib_sparse.networks import SparseModelConfig
from rllib_sparse.streaming import StreamAC


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[128, 1024])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    pairs = {}
    for width in args.widths:
        model = SparseModelConfig.parse({"model": "layernorm_mlp", "width": width, "depth": 2})
        agent = StreamAC(17, 6, model, init="dense")
        optimizer, params = agent.value_optimizer, agent.critic_params
        agent.critic(torch.randn(17)).backward()
        traces = [optimizer.state[p]["trace"] for p in params]
        for t in traces:
            t.normal_()

        def clear(params=params):
            for p in params:
                p.grad = None

        def regrad(params=params):
            for p in params:
                p.grad = torch.zeros_like(p)

        pairs[(width, "L1 norm of the traces")] = (
            lambda traces=traces: float(torch.stack(torch._foreach_norm(traces, 1)).sum()),
            lambda traces=traces: float(torch.stack([t.abs().sum() for t in traces]).sum()))
        pairs[(width, "ObGD update")] = (lambda o=optimizer: o.step(0.0), lambda o=optimizer: o.update(0.0))
        pairs[(width, "clear gradients")] = ((lambda o=optimizer, r=regrad: (r(), o.zero_grad())),
                                             (lambda r=regrad, c=clear: (r(), c())))
    times = {(case, side): [] for case in pairs for side in (0, 1)}
    for _ in range(args.rounds):
        for case, sides in pairs.items():
            for side, fn in enumerate(sides):
                fn()
                start = time.perf_counter()
                for _ in range(args.calls):
                    fn()
                times[(case, side)].append((time.perf_counter() - start) / args.calls * 1e6)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread; "
          f"µs per call, median (min-max) over {args.rounds} rounds")
    print("| width | what | alternative | shipped | shipped / alternative |")
    print("|---|---|---|---|---|")
    for (width, what) in pairs:
        slow, fast = times[((width, what), 0)], times[((width, what), 1)]
        ratios = [f / s for f, s in zip(fast, slow)]
        print(f"| {width} | {what} | {statistics.median(slow):.0f} ({min(slow):.0f}–{max(slow):.0f}) | "
              f"{statistics.median(fast):.0f} ({min(fast):.0f}–{max(fast):.0f}) | "
              f"{statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f}) |")


if __name__ == "__main__":
    main()
