"""How long the Tune driver loop waits per trial iteration to log it to MLflow, sent inline vs journaled.

A sweep logs one ``log_batch`` per trial iteration from the driver's Tune callback. Sent inline, the
driver waits for the HTTP round trip (and for MLflow's retries, minutes, when the server is down);
journaled (what sweeps do), it waits for one line appended to a file, and a background thread sends.
This script starts a real ``mlflow server`` on 127.0.0.1, logs the same curated metric dict
(~25 keys) both ways in interleaved rounds, and reports the median and spread of the per-call time
the caller sees; then the same for the journaled path while the server is stopped.

    .venv/bin/python benchmarks/tracking_latency.py [--rounds 5] [--calls 40]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import time
from pathlib import Path

from rllib_sparse.sweep.mlflow_server import local_mlflow_server
from rllib_sparse.sweep.tracking import SweepTracker

METRICS = {f"learner/stat_{i}": float(i) for i in range(18)} | {
    "episode_return_mean": 1.0, "episode_return_max": 2.0, "episode_len_mean": 3.0, "env_steps": 4.0,
    "iteration": 5.0, "time_total_s": 6.0, "env_steps_per_s": 7.0}


def per_call_ms(tracker: SweepTracker, trial: str, calls: int, first_step: int) -> float:
    start = time.perf_counter()
    for step in range(first_step, first_step + calls):
        tracker.log_metrics(trial, METRICS, step=step)
    return (time.perf_counter() - start) / calls * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=40)
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = Path(tempfile.mkdtemp(prefix="tracking-latency-"))
    inline_ms, journaled_ms, drain_s = [], [], []
    with local_mlflow_server(root / "server", port) as uri:
        inline = SweepTracker(uri, "latency")
        inline.start_parent("inline")
        inline.child_run("t", "t", {"width": 1}, {})
        journaled = SweepTracker(uri, "latency")
        journaled.start_parent("journaled")
        journaled.start_sending(root / "journal.jsonl")
        journaled.child_run("t", "t", {"width": 1}, {})
        for r in range(args.rounds):  # interleaved, so load changes hit both alike
            inline_ms.append(per_call_ms(inline, "t", args.calls, r * args.calls))
            journaled_ms.append(per_call_ms(journaled, "t", args.calls, r * args.calls))
            start = time.perf_counter()
            journaled.wait_until_sent(timeout=60)
            drain_s.append(time.perf_counter() - start)
        journaled.end_parent("FINISHED")
        assert journaled.close(timeout=60) == 0
        down = SweepTracker(uri, "latency")
        down.start_parent("outage")
        down.start_sending(root / "journal-outage.jsonl")
        down.child_run("t", "t", {"width": 1}, {})
    # The server is down now: the inline path would block for MLflow's retries; the journaled one not.
    outage_ms = [per_call_ms(down, "t", args.calls, 10_000 + r * args.calls) for r in range(args.rounds)]
    unsent = down.close(timeout=1)

    def show(name: str, values: list[float]) -> None:
        print(f"{name:<44} median {statistics.median(values):8.3f} ms  (min {min(values):.3f}, max {max(values):.3f})")

    print(f"{args.rounds} rounds x {args.calls} log_metrics calls, {len(METRICS)} metrics each, "
          f"mlflow server on 127.0.0.1 (1 worker, SQLite)")
    show("inline (driver waits for HTTP)", inline_ms)
    show("journaled (driver appends a line)", journaled_ms)
    show("journaled, server down", outage_ms)
    print(f"ratio inline/journaled: {statistics.median(inline_ms) / statistics.median(journaled_ms):.0f}x; "
          f"background drain of {args.calls} records: median {statistics.median(drain_s):.2f} s; "
          f"records left unsent while down: {unsent}")


if __name__ == "__main__":
    main()
