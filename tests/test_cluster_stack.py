"""The compose stack's cluster path with real processes instead of containers: a Ray head and two worker
nodes on 127.0.0.1 (``ray start``, token auth on, as Ray 2.60 has it by default), an MLflow server on
PostgreSQL with S3 artifacts, and an S3-compatible store (moto) that also holds Tune's storage.

One cluster serves the module, in this order: ``sweep --address`` and ``submit --wait`` run their two
trials on both worker nodes; then a sweep submitted with ``rllib-sparse submit`` loses a worker node
mid-sweep (its process group killed by PID) and still completes: the lost trial resumes from its last
checkpoint on the surviving node, MLflow ends with exactly one FINISHED child run per grid point with a
continuous history, and every checkpoint kept its masks exact; last, clients without the token can
neither join nor submit. The nodes run as ``ray start --block`` in their own process groups; the fixture
stops exactly those groups by PID (never ``ray stop``, which would stop every Ray on the machine)."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient

from servers import (
    alive_nodes,
    free_ports,
    mlflow_tracking_server,
    node_ports,
    postgres_bin,
    postgres_server,
    s3_server,
    stop_group,
    wait_for,
)
from test_sweep_run import SWEEP

pytestmark = [pytest.mark.ray, pytest.mark.skipif(postgres_bin() is None, reason="no PostgreSQL server installed "
                                                   "(scripts/setup.sh --test installs Debian's)")]

BIN = Path(sys.executable).parent
ITERATIONS = 10
SPARSE = "simba-w16-d1-s0.9-seed0"  # the grid point whose node is killed


def _start_node(args: list[str], ports: range, env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(node_ports([str(BIN / "ray"), "start", "--block", *args], ports), env=env,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("stack")
    short = Path(tempfile.mkdtemp(prefix="rs-", dir="/tmp"))  # AF_UNIX socket paths: at most 107 bytes
    nodes = []
    with postgres_server() as database, s3_server(root, ("mlflow-artifacts", "tune")) as (s3_env, s3), \
            mlflow_tracking_server(root, database, "s3://mlflow-artifacts", s3_env) as tracking:
        env = {**os.environ, **s3_env, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "RAY_AUTH_MODE": "token",
               "RAY_USAGE_STATS_ENABLED": "0",
               # A lost node is declared dead after ~3 s instead of ~30 s.
               "RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "3"}
        subprocess.run([str(BIN / "ray"), "get-auth-token", "--generate"], env=env, check=True,
                       capture_output=True, timeout=60)
        gcs, dashboard = free_ports(2)
        try:
            # The head only schedules (no CPUs), as in docker/compose.yaml; each worker takes one trial.
            nodes.append(_start_node(["--head", "--node-ip-address", "127.0.0.1", "--port", str(gcs), "--num-cpus", "0",
                                      "--include-dashboard=true", "--dashboard-host", "127.0.0.1",
                                      "--dashboard-port", str(dashboard), "--temp-dir", str(short),
                                      "--disable-usage-stats"], range(24000, 24200), env, root / "head.log"))
            address = f"http://127.0.0.1:{dashboard}"
            wait_for(lambda: nodes[0].poll() is not None or alive_nodes(address, env) >= 1, 120, "the head node")
            for i in (1, 2):  # one after the other: two raylets starting at once time out on 2 cores
                nodes.append(_start_node(["--address", f"127.0.0.1:{gcs}", "--node-ip-address", "127.0.0.1",
                                          "--num-cpus", "1", "--resources", json.dumps({f"worker{i}": 1})],
                                         range(24000 + 200 * i, 24200 + 200 * i), env, root / f"worker{i}.log"))
                wait_for(lambda i=i: nodes[-1].poll() is not None or alive_nodes(address, env) >= 1 + i, 180,
                         f"worker node {i}")
            assert all(node.poll() is None for node in nodes)
            yield {"dashboard": address, "gcs": f"127.0.0.1:{gcs}", "env": env, "tracking": tracking, "s3": s3, "nodes": nodes, "root": root}
        finally:
            for node in nodes:
                stop_group(node)
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


def test_sweep_joins_the_cluster_and_runs_trials_on_both_nodes(stack, tmp_path):
    run = subprocess.run([str(BIN / "rllib-sparse"), "sweep", str(two_trial_sweep(tmp_path)), "--address", stack["gcs"]],
                         cwd=tmp_path, env=stack["env"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert len(node_ids(tmp_path / "mlruns" / "mlflow.db")) == 2


def test_submit_runs_the_sweep_as_a_ray_job(stack, tmp_path):
    job_dir = tmp_path / "job"
    run = subprocess.run([str(BIN / "rllib-sparse"), "submit", str(two_trial_sweep(tmp_path)),
                          "--address", stack["dashboard"], "--job-dir", str(job_dir), "--wait"],
                         cwd=tmp_path, env=stack["env"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "submitted job" in run.stdout and "ray job logs --address" in run.stdout
    assert "SUCCEEDED" in run.stdout
    assert "simba-w16-d1-s0.9-seed0" in run.stdout  # the job's progress lines were followed
    assert len(node_ids(job_dir / "mlruns" / "mlflow.db")) == 2
    [meta] = (job_dir / "runs" / "tiny").glob("*.json")
    assert json.loads(meta.read_text())["parent_run_id"]


def _objects(s3, bucket: str, prefix: str = "") -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def _worker_of_node(stack, node_id: str) -> int:
    """Which of our worker processes (1 or 2) is Ray node ``node_id`` (each has a ``worker<i>`` resource)."""
    code = ("import json; from ray.util.state import list_nodes; "
            f"print(json.dumps({{n.node_id: list(n.resources_total) for n in list_nodes(address={stack['dashboard']!r},"
            " detail=True, timeout=10)}))")
    run = subprocess.run([sys.executable, "-c", code], env=stack["env"], capture_output=True, text=True, timeout=60)
    resources = json.loads(run.stdout.strip().splitlines()[-1])[node_id]
    return next(int(name[len("worker"):]) for name in resources if name.startswith("worker"))


def _job_status(stack, job_id: str) -> str:
    code = ("from ray.job_submission import JobSubmissionClient as C; "
            f"print(C({stack['dashboard']!r}).get_job_status({job_id!r}).value)")
    run = subprocess.run([sys.executable, "-c", code], env=stack["env"], capture_output=True, text=True, timeout=60)
    return run.stdout.strip()


def test_submitted_sweep_survives_a_lost_node_with_s3_checkpoints_and_mlflow_on_postgres(stack, tmp_path):
    sweep = tmp_path / "tiny.yaml"
    sweep.write_text(yaml.safe_dump({**SWEEP, "stop": {"iterations": ITERATIONS}, "failure": {"max_retries": 3}}))
    run = subprocess.run([str(BIN / "rllib-sparse"), "submit", str(sweep), "--address", stack["dashboard"],
                          "--tracking-uri", stack["tracking"], "--storage", "s3://tune/runs",
                          "--job-dir", str(tmp_path / "job")],
                         cwd=tmp_path, env=stack["env"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    job_id = run.stdout.split("submitted job ", 1)[1].split()[0]

    # Both trials running (one per worker node) and checkpointed at least twice: then a worker node dies.
    def checkpointed_twice():
        keys = _objects(stack["s3"], "tune", "runs/tiny/")
        trials = {key.split("/")[3] for key in keys if "/checkpoint_000001/" in key}
        return len(trials) == 2
    wait_for(checkpointed_twice, 300, "both trials' second checkpoint on S3")
    # The node of the sparse trial dies: its restored checkpoints must keep their masks.
    [sparse_record] = [key for key in _objects(stack["s3"], "tune", "runs/tiny/")
                       if key.endswith(f"{SPARSE}/rllib_sparse_progress.json")]
    record = json.loads(stack["s3"].get_object(Bucket="tune", Key=sparse_record)["Body"].read())
    victim = stack["nodes"][_worker_of_node(stack, record["attempts"][-1]["node_id"])]
    stop_group(victim)  # its raylet and every worker process it started: one process group, by PID
    killed_at = time.time()

    wait_for(lambda: _job_status(stack, job_id) in ("SUCCEEDED", "FAILED", "STOPPED"), 600, "the job to end")
    logs = subprocess.run([str(BIN / "ray"), "job", "logs", "--address", stack["dashboard"], job_id],
                          env=stack["env"], capture_output=True, text=True, timeout=60).stdout
    assert _job_status(stack, job_id) == "SUCCEEDED", logs[-4000:]

    # Tune's trial folders and checkpoints are on the S3 storage; one trial restarted on the other node.
    keys = _objects(stack["s3"], "tune", "runs/tiny/")
    progress_keys = [key for key in keys if key.endswith("rllib_sparse_progress.json")]
    assert len(progress_keys) == 2
    resumed = []
    for key in progress_keys:
        record = json.loads(stack["s3"].get_object(Bucket="tune", Key=key)["Body"].read())
        assert record["done"] and record["iteration"] == ITERATIONS
        later = [a for a in record["attempts"][1:] if a["time"] > killed_at - 5]
        if later:
            assert later[0]["from_iteration"] >= 2  # from its last checkpoint, not from scratch
            assert later[0]["node_id"] != record["attempts"][0]["node_id"]  # on the surviving node
            resumed.append(key)
    assert len(resumed) == 1 and SPARSE in resumed[0], progress_keys
    # Every checkpoint the restarted trial kept on S3 (before and after the restore) has exact masks.
    folder = resumed[0].rsplit("/", 1)[0]
    states = [key for key in keys if key.startswith(folder) and key.endswith("default_policy/module_state.pkl")]
    assert states
    for key in states:
        state = pickle.loads(stack["s3"].get_object(Bucket="tune", Key=key)["Body"].read())
        masks = [name for name in state if name.endswith(".mask")]
        assert masks, key
        for name in masks:
            weight = state[name[: -len("mask")] + "weight"]
            assert not np.any(weight[~state[name]]), (key, name)

    # MLflow (PostgreSQL): one FINISHED child per grid point, each with one continuous history; the
    # masks were exact in every checkpoint (checked on the networks each checkpoint saved).
    client = MlflowClient(stack["tracking"])
    experiment = client.get_experiment_by_name("tiny")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    kids = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(k.info.run_name for k in kids) == ["simba-w16-d1-s0-seed0", "simba-w16-d1-s0.9-seed0"]
    for kid in kids:
        assert kid.info.status == "FINISHED"
        values = [p.value for p in client.get_metric_history(kid.info.run_id, "iteration")]
        assert sorted(values) == list(range(1, ITERATIONS + 1)), (kid.info.run_name, values)
        masked = client.get_metric_history(kid.info.run_id, "mask/max_masked_weight")
        assert len(masked) == ITERATIONS and all(p.value == 0.0 for p in masked)
    # The sweep file, logged to the parent run, went through the server into the S3 artifact bucket.
    assert [a.path for a in client.list_artifacts(parents[0].info.run_id)]
    assert _objects(stack["s3"], "mlflow-artifacts")


def test_without_the_token_a_client_can_neither_join_nor_submit(stack, tmp_path):
    before = alive_nodes(stack["dashboard"], stack["env"])
    for name, auth in {"wrong token": {"RAY_AUTH_TOKEN": "not-the-cluster-token"},
                       "no token": {"RAY_AUTH_MODE": "disabled", "RAY_AUTH_TOKEN": ""}}.items():
        env = {**stack["env"], **auth, "HOME": str(tmp_path / "elsewhere")}  # no ~/.ray/auth_token there
        sweep = tmp_path / "tiny.yaml"
        sweep.write_text(yaml.safe_dump(SWEEP))
        submit = subprocess.run([str(BIN / "rllib-sparse"), "submit", str(sweep), "--address", stack["dashboard"]],
                                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert submit.returncode != 0 and "submitted job" not in submit.stdout, (name, submit.stdout)
        if name == "wrong token":  # a driver joining with it: the one-line refusal, none of Ray's native lines
            sweep_run = subprocess.run([str(BIN / "rllib-sparse"), "sweep", str(sweep), "--address", stack["gcs"]],
                                       cwd=tmp_path, env={**env, "RAY_gcs_server_port_wait_time_s": "3"},
                                       capture_output=True, text=True, timeout=300)
            errors = [line for line in sweep_run.stderr.splitlines() if line.strip()]
            assert sweep_run.returncode == 2 and len(errors) == 1, sweep_run.stdout[-2000:] + sweep_run.stderr[-3000:]
            assert "Ray could not be started at --address=" in errors[0], errors
        # The joiner gives up after 3 connection tries instead of Ray's ~20 (one a second): refused is refused.
        joiner = _start_node(["--address", stack["gcs"], "--node-ip-address", "127.0.0.1", "--num-cpus", "1"],
                             range(25000, 25200), {**env, "RAY_gcs_server_port_wait_time_s": "3"},
                             tmp_path / f"{name}.log")
        try:
            wait_for(lambda joiner=joiner: joiner.poll() is not None, 120, f"ray start with {name} to give up")
            assert joiner.returncode != 0, name
        finally:
            stop_group(joiner)
        assert alive_nodes(stack["dashboard"], stack["env"]) == before, name
