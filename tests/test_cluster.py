"""A real 2-node Ray cluster on 127.0.0.1 (``ray start --head`` + ``ray start --address``, token auth on,
as Ray 2.60 has it by default): ``sweep --address`` and ``submit``, with trials shown on both nodes.

The nodes run as ``ray start --block`` in their own process groups; the fixture stops exactly those
groups by PID (never ``ray stop``, which would stop every Ray on the machine).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from test_sweep_run import SWEEP

pytestmark = pytest.mark.ray

BIN = Path(sys.executable).parent


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def node_ports(flags: list[str], workers: range) -> list[str]:
    """Every port of a node set explicitly, so two nodes on one host never pick the same one."""
    names = ["--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
             "--dashboard-agent-grpc-port", "--metrics-export-port", "--runtime-env-agent-port"]
    args = []
    for name, port in zip(names, free_ports(len(names))):
        args += [name, str(port)]
    return flags + args + ["--min-worker-port", str(workers.start), "--max-worker-port", str(workers.stop - 1)]


def wait_for(check, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        result = check()
        if result:
            return result
        time.sleep(1)
    raise TimeoutError(f"timed out waiting for {what}")


def alive_nodes(dashboard: str, env: dict) -> int:
    """ALIVE nodes, asked through the dashboard's state API in a client with the cluster's token."""
    code = ("from ray.util.state import list_nodes; "
            f"print(sum(n.state == 'ALIVE' for n in list_nodes(address={dashboard!r}, timeout=5)))")
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    return int(run.stdout.strip() or 0) if run.returncode == 0 else 0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    short = Path(tempfile.mkdtemp(prefix="rc-", dir="/tmp"))  # AF_UNIX socket paths: at most 107 bytes
    gcs, dashboard = free_ports(2)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "RAY_AUTH_MODE": "token",
           "RAY_USAGE_STATS_ENABLED": "0"}
    # The cluster's token (under the tests' HOME), then every node and client runs in token mode.
    subprocess.run([str(BIN / "ray"), "get-auth-token", "--generate"], env=env, check=True,
                   capture_output=True, timeout=60)
    head = subprocess.Popen(
        node_ports([str(BIN / "ray"), "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
                    "--port", str(gcs), "--num-cpus", "1", "--include-dashboard=true",
                    "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard),
                    "--temp-dir", str(short), "--disable-usage-stats"], range(23000, 23200)),
        env=env, stdout=open(root / "head.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
    groups = [head.pid]
    try:
        address = f"http://127.0.0.1:{dashboard}"
        wait_for(lambda: head.poll() is not None or alive_nodes(address, env) >= 1, 120, "the head node")
        assert head.poll() is None, (root / "head.log").read_text()[-3000:]
        worker = subprocess.Popen(
            node_ports([str(BIN / "ray"), "start", "--block", "--address", f"127.0.0.1:{gcs}",
                        "--node-ip-address", "127.0.0.1", "--num-cpus", "1"], range(23200, 23400)),
            env=env, stdout=open(root / "worker.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
        groups.append(worker.pid)
        wait_for(lambda: worker.poll() is not None or alive_nodes(address, env) >= 2, 120, "the second node")
        assert worker.poll() is None, (root / "worker.log").read_text()[-3000:]
        yield {"gcs": f"127.0.0.1:{gcs}", "dashboard": address, "env": env, "root": root}
    finally:
        for pid in groups:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        head.wait()
        shutil.rmtree(short, ignore_errors=True)


def two_trial_sweep(folder: Path) -> Path:
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump({**SWEEP, "stop": {"iterations": 3}}))
    return path


def node_ids(db: Path) -> set[str]:
    client = MlflowClient(f"sqlite:///{db}")
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    kids = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(kids) == 2 and all(r.info.status == "FINISHED" for r in kids)
    return {r.data.tags["ray.node_id"] for r in kids}


def test_sweep_joins_the_cluster_and_runs_trials_on_both_nodes(cluster, tmp_path):
    exe = BIN / "rllib-sparse"
    run = subprocess.run([str(exe), "sweep", str(two_trial_sweep(tmp_path)), "--address", cluster["gcs"]],
                         cwd=tmp_path, env=cluster["env"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert len(node_ids(tmp_path / "mlruns" / "mlflow.db")) == 2


def test_submit_runs_the_sweep_as_a_ray_job(cluster, tmp_path):
    exe = BIN / "rllib-sparse"
    job_dir = tmp_path / "job"
    run = subprocess.run([str(exe), "submit", str(two_trial_sweep(tmp_path)), "--address", cluster["dashboard"],
                          "--job-dir", str(job_dir), "--wait"],
                         cwd=tmp_path, env=cluster["env"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "submitted job" in run.stdout and "ray job logs --address" in run.stdout
    assert "SUCCEEDED" in run.stdout
    assert "simba-w16-d1-s0.9-seed0" in run.stdout  # the job's progress lines were followed
    assert len(node_ids(job_dir / "mlruns" / "mlflow.db")) == 2
    [meta] = (job_dir / "runs" / "tiny").glob("*.json")
    assert json.loads(meta.read_text())["parent_run_id"]
