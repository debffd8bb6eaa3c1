"""The team cluster's services as real processes on 127.0.0.1, as docker/compose.yaml declares them:
PostgreSQL (Debian's server), an S3-compatible store (moto's server) and an MLflow tracking server on
both. Each is started in its own process group and stopped by that group's PID. ``free_ports`` and
``node_ports`` also serve benchmarks/cluster_overhead.py (imported from this folder): one way to start
Ray nodes side by side on one host.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports (all bound at once, so none is handed out twice)."""
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def free_port() -> int:
    return free_ports(1)[0]


def node_ports(flags: list[str], workers: range) -> list[str]:
    """``ray start`` flags with every port of a node set explicitly, so two nodes on one host never pick
    the same one."""
    names = ["--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
             "--dashboard-agent-grpc-port", "--metrics-export-port", "--runtime-env-agent-port"]
    args = []
    for name, port in zip(names, free_ports(len(names))):
        args += [name, str(port)]
    return flags + args + ["--min-worker-port", str(workers.start), "--max-worker-port", str(workers.stop - 1)]


def wait_for(check, timeout: float, what: str):
    """Poll ``check`` every second until it returns something true; that value, or a TimeoutError."""
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


def wait_until(check, timeout: float, what: str, process: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited: {log.read_text()[-2000:] if log else ''}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"timed out waiting for {what}")


def stop_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    return Path(found[-1]).parent if found else None


@contextlib.contextmanager
def postgres_server():
    """A PostgreSQL server on 127.0.0.1 with a ``mlflow`` database; yields its SQLAlchemy URI.

    PostgreSQL refuses to run as root: as root, the server runs as Debian's ``postgres`` user, in a
    folder of its own under /tmp (pytest's folders are closed to other users); removed at the end.
    """
    pg = postgres_bin()
    folder = Path(tempfile.mkdtemp(prefix="rs-pg-", dir="/tmp"))
    data, sockets = folder / "pgdata", folder / "pgsock"
    sockets.mkdir()
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(folder, "postgres")
        shutil.chown(sockets, "postgres")
    init = subprocess.run([*as_user, str(pg / "initdb"), "-D", str(data), "-U", "mlflow", "--auth=trust"],
                          capture_output=True, text=True, timeout=120)
    if init.returncode:
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {init.stderr[-2000:]}")
    port = free_port()
    log = folder / "postgres.log"
    process = subprocess.Popen(
        [*as_user, str(pg / "postgres"), "-D", str(data), "-p", str(port), "-k", str(sockets),
         "-c", "listen_addresses=127.0.0.1"],
        stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        ready = [str(pg / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)]
        wait_until(lambda: subprocess.run(ready, capture_output=True).returncode == 0, 60, "postgres", process, log)
        subprocess.run([*as_user, str(pg / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "mlflow", "mlflow"],
                       check=True, capture_output=True, timeout=60)
        yield f"postgresql+psycopg2://mlflow@127.0.0.1:{port}/mlflow"
    finally:
        stop_group(process)
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def s3_server(folder: Path, buckets: tuple[str, ...]):
    """An S3-compatible server (moto) on 127.0.0.1 with ``buckets``; yields the environment that points
    boto3, pyarrow (Tune) and MLflow at it."""
    port = free_port()
    log = folder / "s3.log"
    process = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                               stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    env = {"AWS_ACCESS_KEY_ID": "test-key", "AWS_SECRET_ACCESS_KEY": "test-secret", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": endpoint, "MLFLOW_S3_ENDPOINT_URL": endpoint}
    try:
        wait_until(lambda: urllib.request.urlopen(endpoint, timeout=2).status == 200, 60, "the S3 server", process, log)
        import boto3

        client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                              aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")
        for bucket in buckets:
            client.create_bucket(Bucket=bucket)
        yield env, client
    finally:
        stop_group(process)


@contextlib.contextmanager
def mlflow_tracking_server(folder: Path, backend: str, artifacts: str, env: dict):
    """``mlflow server`` on 127.0.0.1: runs in ``backend``, artifacts proxied to ``artifacts``."""
    port = free_port()
    log = folder / "mlflow.log"
    process = subprocess.Popen(
        [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", backend, "--artifacts-destination", artifacts, "--serve-artifacts"],
        env={**os.environ, **env}, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: urllib.request.urlopen(f"{uri}/health", timeout=2).status == 200, 180, "mlflow server",
                   process, log)
        yield uri
    finally:
        stop_group(process)
