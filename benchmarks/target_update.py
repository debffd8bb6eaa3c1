"""Polyak target update of a twin SimBa critic: RLlib's state-dict average vs our in-place ``lerp``.

RLlib's ``update_target_network`` builds ``tau * main + (1 - tau) * target`` from both state dicts and
loads it back (our sparse layers re-apply their masks on load); ``polyak_update_`` is one fused
``torch._foreach_lerp_`` over the same tensors. Both variants run on the same networks, interleaved
round by round; medians and min-max over rounds. Results: docs/benchmarks.md, "Target-network update in place".

    .venv/bin/python benchmarks/target_update.py
    .venv/bin/python benchmarks/target_update.py --widths 512 1024 --rounds 7 --device cuda
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics

import torch

from timing import ms_per_call  # benchmarks/timing.py, beside this script


def twin_critic(width: int, sparsity: float, device: str):
    from rllib_sparse.networks import SimBa
    from rllib_sparse.sparsity import sparsify

    critics = torch.nn.ModuleList([SimBa(67, width, 2, extra_dim=21) for _ in range(2)])  # humanoid: obs 67, act 21
    for critic in critics:
        if sparsity:
            sparsify(critic, sparsity, seed=0)
    return critics.to(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--sparsities", type=float, nargs="+", default=[0.0, 0.9])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5, help="updates per timing")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    from ray.rllib.utils.torch_utils import update_target_network

    from rllib_sparse.networks import polyak_update_

    torch.set_num_threads(1)
    results = {}
    for width in args.widths:
        for sparsity in args.sparsities:
            main_net = twin_critic(width, sparsity, args.device)
            target = copy.deepcopy(main_net)
            variants = {"rllib state-dict average": lambda m=main_net, t=target: update_target_network(m, t, 0.005),
                        "in-place lerp": lambda m=main_net, t=target: polyak_update_(m, t, 0.005)}
            times: dict[str, list[float]] = {name: [] for name in variants}
            for fn in variants.values():
                fn()  # warm-up
            for _ in range(args.rounds):
                for name, fn in variants.items():
                    times[name].append(ms_per_call(fn, args.device, args.repeats))
            row = {name: {"ms median": round(statistics.median(t), 2), "min": round(min(t), 2),
                          "max": round(max(t), 2)} for name, t in times.items()}
            ratios = [a / b for a, b in zip(times["rllib state-dict average"], times["in-place lerp"])]
            row["speed-up (median of per-round ratios)"] = round(statistics.median(ratios), 1)
            params = sum(p.numel() for p in main_net.parameters())
            results[f"width {width}, S={sparsity:g} ({params / 1e6:.1f}M parameters)"] = row
    device = torch.cuda.get_device_name() if args.device == "cuda" else (platform.processor() or platform.machine())
    print(json.dumps({"machine": f"{device}, {os.cpu_count()} cores, torch {torch.__version__}, 1 thread",
                      "rounds": args.rounds, "updates per timing": args.repeats, "results": results}, indent=2))


if __name__ == "__main__":
    main()
