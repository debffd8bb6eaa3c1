"""What distributing a sweep over Ray nodes costs: the quickstart grid on a 1-node vs a 2-node local
cluster with the same CPUs in total (2 trial slots either way), so this measures overhead, not speed-up.

Each round starts a fresh cluster of each kind with ``ray start`` on 127.0.0.1 (token auth, as Ray 2.60
has it; every node in its own process group, stopped by PID), runs ``rllib-sparse sweep
tune_configs/quickstart.yaml --address ... --no-tracking`` against it, and stops it; kinds alternate
round by round. Reported per kind: the sweep's wall time and the time from the driver's start to the
first trial's start (from the trials' own progress records).

    .venv/bin/python benchmarks/cluster_overhead.py --rounds 3 --iterations 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "tune_configs" / "quickstart.yaml"
BIN = Path(sys.executable).parent

# Free ports and a node's port flags: tests/servers.py starts the cluster test's nodes the same way.
sys.path.insert(0, str(REPO / "tests"))
from servers import free_ports, node_ports  # noqa: E402


def _node(args: list[str], env: dict, log: Path, first_worker_port: int) -> subprocess.Popen:
    command = node_ports([str(BIN / "ray"), "start", "--block", "--node-ip-address", "127.0.0.1", *args],
                         range(first_worker_port, first_worker_port + 200))
    return subprocess.Popen(command, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)


def _alive(gcs: str, env: dict) -> int:
    code = f"import ray; ray.init(address={gcs!r}, log_to_driver=False); print(sum(n['Alive'] for n in ray.nodes()))"
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    return int(run.stdout.strip().splitlines()[-1]) if run.returncode == 0 else 0


def run_once(nodes: int, cpus: int, iterations: int, folder: Path, env: dict) -> dict:
    short = Path(tempfile.mkdtemp(prefix="rb-", dir="/tmp"))  # AF_UNIX socket paths: at most 107 bytes
    (gcs_port,) = free_ports(1)
    gcs = f"127.0.0.1:{gcs_port}"
    per_node = cpus // nodes
    started = [_node(["--head", "--port", str(gcs_port), "--num-cpus", str(per_node), "--include-dashboard=false",
                      "--temp-dir", str(short), "--disable-usage-stats"], env, folder / "head.log", 26000)]
    try:
        for i in range(1, nodes):
            time.sleep(3)
            started.append(_node(["--address", gcs, "--num-cpus", str(per_node)], env, folder / f"w{i}.log",
                                 26000 + 200 * i))
        deadline = time.time() + 120
        while _alive(gcs, env) < nodes:
            if time.time() > deadline:
                raise TimeoutError(f"{nodes} node(s) did not come up")
            time.sleep(1)
        start = time.time()
        run = subprocess.run(
            [str(BIN / "rllib-sparse"), "sweep", str(QUICKSTART), "--address", gcs, "--no-tracking",
             "--set", f"stop.iterations={iterations}"], cwd=folder, capture_output=True, text=True, env=env)
        wall = time.time() - start
    finally:
        for process in started:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()
        shutil.rmtree(short, ignore_errors=True)
    if run.returncode != 0:
        raise RuntimeError(f"sweep failed on {nodes} node(s): {run.stdout[-2000:]}{run.stderr[-2000:]}")
    starts = [json.loads(p.read_text())["attempts"][0]["time"]
              for p in folder.glob("runs/quickstart/*/*/rllib_sparse_progress.json")]
    return {"wall": wall, "first_start": min(starts) - start, "trials": len(starts)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=5, help="stop.iterations of each quickstart trial")
    parser.add_argument("--cpus", type=int, default=2, help="trial slots in total, split over the nodes")
    args = parser.parse_args()
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0",
           "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run([str(BIN / "ray"), "get-auth-token", "--generate"], env=env, check=True, capture_output=True)
    results = {1: [], 2: []}
    for round_ in range(args.rounds):
        for nodes in results:
            with tempfile.TemporaryDirectory() as folder:
                results[nodes].append(run_once(nodes, args.cpus, args.iterations, Path(folder), env))
            print(f"round {round_ + 1}/{args.rounds}, {nodes} node(s): {results[nodes][-1]}", flush=True)

    def spread(key, nodes):
        values = [r[key] for r in results[nodes]]
        return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"

    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores; quickstart grid "
          f"({results[1][0]['trials']} trials, {args.iterations} iterations each), {args.cpus} slots, "
          f"{args.rounds} rounds")
    print("| nodes | sweep wall s, median (min-max) | driver start to first trial start s |")
    print("|---|---|---|")
    for nodes in results:
        print(f"| {nodes} | {spread('wall', nodes)} | {spread('first_start', nodes)} |")
    ratios = [two["wall"] / one["wall"] for one, two in zip(results[1], results[2])]
    print(f"2-node / 1-node wall time: {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
