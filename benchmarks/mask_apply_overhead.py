"""What torch's ``autograd.Function.apply`` costs per masked layer, and what skipping its argument
binding saves: the same update with ``_MaskGradient.apply`` as shipped vs torch's own ``Function.apply``.

torch binds a ``setup_context``-style Function's arguments with ``inspect.signature`` on every call;
our masked layers pass every weight through such a Function while autograd records. The update is a
SimBa critic (2 blocks, DMC-humanoid shapes) forward + backward + AdamW step, 90% sparse; batch 1 (a
streaming step) to 256 (an off-policy minibatch). Variants interleaved, median and min–max over rounds.

    .venv/bin/python benchmarks/mask_apply_overhead.py --rounds 5
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from rllib_sparse.networks import SimBa, linear_head
from rllib_sparse.sparsity import layers, sparsify

OBS, ACT = 67, 21
SHIPPED = layers._MaskGradient.__dict__["apply"]
TORCH = classmethod(torch.autograd.Function.apply.__func__)


def use(apply) -> None:
    layers._MaskGradient.apply = apply


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32, 256])
    parser.add_argument("--updates", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cases = {}
    for width in args.widths:
        net = torch.nn.ModuleList([SimBa(OBS, width, 2, extra_dim=ACT), linear_head(width, 1)])
        sparsify(net, 0.9, seed=0)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
        for batch in args.batches:
            obs, act = torch.randn(batch, OBS), torch.randn(batch, ACT)

            def update(net=net, opt=opt, obs=obs, act=act):
                for _ in range(args.updates):
                    loss = net[1](net[0](obs, act)).square().mean()
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            cases[(width, batch)] = update
    times = {(case, variant): [] for case in cases for variant in ("torch", "shipped")}
    for _ in range(args.rounds):
        for case, update in cases.items():
            for variant, apply in (("torch", TORCH), ("shipped", SHIPPED)):
                use(apply)
                update()  # warm
                start = time.perf_counter()
                update()
                times[(case, variant)].append((time.perf_counter() - start) / args.updates * 1e3)
    use(SHIPPED)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread; "
          f"ms per update, median (min-max) over {args.rounds} rounds")
    print("| width | batch | torch's Function.apply | shipped apply | shipped / torch |")
    print("|---|---|---|---|---|")
    for width, batch in cases:
        slow, fast = times[((width, batch), "torch")], times[((width, batch), "shipped")]
        ratios = [f / s for f, s in zip(fast, slow)]
        print(f"| {width} | {batch} | {statistics.median(slow):.2f} ({min(slow):.2f}–{max(slow):.2f}) | "
              f"{statistics.median(fast):.2f} ({min(fast):.2f}–{max(fast):.2f}) | "
              f"{statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f}) |")


if __name__ == "__main__":
    main()
