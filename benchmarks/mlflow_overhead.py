"""MLflow logging overhead on a sweep, over a real local MLflow HTTP server.

Runs the same sweep three ways, one after the other in one process, after an untimed warm-up sweep,
``--repeats`` times in rotated order, and reports the median wall time of each:
  (a) no tracking; (b) rllib-sparse's tracking (driver-side, one log_batch per trial iteration);
  (c) Ray's stock ``MLflowLoggerCallback`` (one HTTP request per key) instead of ours.
Target: (b) / (a) <= 1.10.

    .venv/bin/python benchmarks/mlflow_overhead.py                       # the quickstart sweep
    .venv/bin/python benchmarks/mlflow_overhead.py --set stop.env_steps=10000
"""

from __future__ import annotations

import argparse
import contextlib
import io
import socket
import statistics
import tempfile
import time
from pathlib import Path

from rllib_sparse.sweep.mlflow_server import local_mlflow_server
from rllib_sparse.sweep.runner import SweepOptions, run_sweep

REPO = Path(__file__).resolve().parent.parent


def timed_sweep(options: SweepOptions) -> float:
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()) as captured:
        code = run_sweep(options)
    if code != 0:
        raise SystemExit(f"sweep failed ({code}):\n{captured.getvalue()[-3000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", default=str(REPO / "tune_configs" / "quickstart.yaml"))
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    from ray.air.integrations.mlflow import MLflowLoggerCallback

    with tempfile.TemporaryDirectory() as tmp, socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        root = Path(tmp)
        with local_mlflow_server(root / "server", port) as uri:
            base = dict(file=Path(args.file), overrides=args.set, num_cpus=2)
            runs = {
                "no tracking": SweepOptions(**base, tracking=False, runs_dir=root / "a"),
                "rllib-sparse tracking (HTTP)": SweepOptions(**base, tracking_uri=uri, runs_dir=root / "b"),
                "stock MLflowLoggerCallback (HTTP)": SweepOptions(
                    **base, tracking=False, runs_dir=root / "c",
                    extra_callbacks=[MLflowLoggerCallback(tracking_uri=uri, experiment_name="stock-callback")]),
            }
            timed_sweep(SweepOptions(**dict(base, overrides=[*args.set, "smoke=true"]), tracking=False,
                                     runs_dir=root / "warmup"))
            samples: dict[str, list[float]] = {label: [] for label in runs}
            labels = list(runs)
            for repeat in range(args.repeats):
                order = labels[repeat % len(labels):] + labels[:repeat % len(labels)]
                for label in order:
                    samples[label].append(timed_sweep(runs[label]))
                    print(f"{label:36s} {samples[label][-1]:8.1f} s", flush=True)
            times = {label: statistics.median(v) for label, v in samples.items()}
    base_time = times["no tracking"]
    print()
    print(f"median of {args.repeats} run(s) each")
    print("| sweep | wall time (s) | vs no tracking |")
    print("|---|---|---|")
    for label, seconds in times.items():
        print(f"| {label} | {seconds:.1f} | {seconds / base_time:.3f} |")


if __name__ == "__main__":
    main()
