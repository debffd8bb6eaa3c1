"""What distributing a sweep over Ray nodes costs: the quickstart grid on a 1-node vs a 2-node local
cluster with the same CPUs in total (2 trial slots either way), so this measures overhead, not speed-up.

Each round starts a fresh cluster of each kind (``ray.cluster_utils.Cluster``: real raylets on
127.0.0.1, token auth as Ray 2.60 has it), runs ``rllib-sparse sweep tune_configs/quickstart.yaml
--address ... --no-tracking`` against it as a separate driver process, and stops it; kinds alternate
round by round. Reported per kind: the sweep's wall time, the time from the driver's start to the
first trial's start, and the slot time not spent training per trial,
``(wall x slots - sum of trial training spans) / trials`` (start-up, scheduling and checkpoint
hand-over; a trial's training span runs from its first iteration's start to its last report).

    .venv/bin/python benchmarks/cluster_overhead.py --rounds 3 --iterations 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "tune_configs" / "quickstart.yaml"


def run_once(nodes: int, cpus: int, iterations: int, folder: Path) -> dict:
    from ray.cluster_utils import Cluster

    per_node = cpus // nodes
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": per_node, "include_dashboard": False})
    try:
        for _ in range(nodes - 1):
            cluster.add_node(num_cpus=per_node)
        cluster.wait_for_nodes()
        start = time.time()
        run = subprocess.run(
            [str(Path(sys.executable).with_name("rllib-sparse")), "sweep", str(QUICKSTART), "--address",
             cluster.address, "--no-tracking", "--set", f"stop.iterations={iterations}"],
            cwd=folder, capture_output=True, text=True, env={**os.environ, "RAY_AUTH_MODE": "token"})
        wall = time.time() - start
    finally:
        cluster.shutdown()
    if run.returncode != 0:
        raise RuntimeError(f"sweep failed on {nodes} node(s): {run.stdout[-2000:]}{run.stderr[-2000:]}")
    spans, starts = [], []
    for result in folder.glob("runs/quickstart/*/*/result.json"):
        rows = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        first = rows[0]["timestamp"] - rows[0]["time_this_iter_s"]
        spans.append(rows[-1]["timestamp"] - first)
        progress = json.loads((result.parent / "rllib_sparse_progress.json").read_text())
        starts.append(progress["attempts"][0]["time"])
    return {"wall": wall, "first_start": min(starts) - start, "trials": len(spans),
            "idle_per_trial": (wall * cpus - sum(spans)) / len(spans)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=5, help="stop.iterations of each quickstart trial")
    parser.add_argument("--cpus", type=int, default=2, help="trial slots in total, split over the nodes")
    args = parser.parse_args()
    results = {1: [], 2: []}
    for round_ in range(args.rounds):
        for nodes in results:
            with tempfile.TemporaryDirectory() as folder:
                results[nodes].append(run_once(nodes, args.cpus, args.iterations, Path(folder)))
            print(f"round {round_ + 1}/{args.rounds}, {nodes} node(s): {results[nodes][-1]}", flush=True)

    def spread(key, nodes, fmt="{:.1f}"):
        values = [r[key] for r in results[nodes]]
        return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"

    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores; quickstart grid "
          f"({results[1][0]['trials']} trials, {args.iterations} iterations each), {args.cpus} slots, "
          f"{args.rounds} rounds")
    print("| nodes | sweep wall s | driver start to first trial s | idle slot s per trial |")
    print("|---|---|---|---|")
    for nodes in results:
        print(f"| {nodes} | {spread('wall', nodes)} | {spread('first_start', nodes)} | "
              f"{spread('idle_per_trial', nodes)} |")
    ratios = [two["wall"] / one["wall"] for one, two in zip(results[1], results[2])]
    print(f"2-node / 1-node wall time: {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
