"""Sweeps end to end on a real local Ray with a real MLflow store: tracking, faults, resume, bad input."""

import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from conftest import REPO

pytestmark = pytest.mark.ray

SWEEP = {
    "name": "tiny",
    "algorithm": "PPO",
    "env": "CartPole-v1",
    "model": {"model": "simba", "depth": 1},
    "grid": {"width": [16], "sparsity": [0.0, 0.9]},
    "training": {"lr": 0.001, "train_batch_size_per_learner": 200, "minibatch_size": 100, "num_epochs": 1},
    "stop": {"iterations": 3},
    "checkpoint": {"frequency": 1},
    "failure": {"max_retries": 2},
}


def sweep_file(folder: Path, **changes) -> Path:
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump({**SWEEP, **changes}))
    return path


def rllib_sparse(args, cwd, env=None, timeout=600) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("rllib-sparse")
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def children(uri: str, experiment: str):
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    kids = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return client, parents, kids


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    """One finished 2-trial sweep into the embedded MLflow store, shared by the tests that read it back.

    Its sparse trial crashes once after iteration 2 (an injected fault) and is retried from its
    checkpoint, so the same sweep shows both the tracking of every trial and a retry's continuous history.
    """
    folder = tmp_path_factory.mktemp("local-sweep")
    marker = folder / "crashed-once"
    fault = {"RLLIB_SPARSE_INJECT_FAULT": f"s0.9@2@{marker}"}
    run = rllib_sparse(["sweep", str(sweep_file(folder, stop={"iterations": 4})), "--num-cpus", "2"],
                       cwd=folder, env=fault)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert marker.exists()  # the fault did fire
    return folder, run


def test_local_sweep_tracks_every_trial_in_mlflow(local_sweep):
    tmp_path, run = local_sweep
    assert "simba-w16-d1-s0.9-seed0" in run.stdout and "finished" in run.stdout
    assert "width \\ sparsity" in run.stdout
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    assert f"mlflow ui --backend-store-uri {uri}" in run.stdout
    assert "Configuration for experiment" not in run.stdout  # Tune's own tables are off
    client, parents, kids = children(uri, "tiny")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert [a.path for a in client.list_artifacts(parents[0].info.run_id)] == ["tiny.yaml"]
    assert sorted(k.info.run_name for k in kids) == ["simba-w16-d1-s0-seed0", "simba-w16-d1-s0.9-seed0"]
    for kid in kids:
        assert kid.info.status == "FINISHED"
        assert kid.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        params = kid.data.params
        assert params["width"] == "16" and params["algorithm"] == "PPO"
        assert int(params["nonzero_params"]) <= int(params["dense_params"])
        assert not any(key.startswith("config/") for key in params)  # a curated set, not RLlib's dump
        assert len(params) < 40
        history = client.get_metric_history(kid.info.run_id, "episode_return_mean")
        steps = [m.step for m in history]
        assert len(steps) == 4 and steps == sorted(steps) and steps[0] > 0  # env steps as MLflow step
        assert "learner/policy_loss" in kid.data.metrics
        artifacts = {a.path for a in client.list_artifacts(kid.info.run_id)}
        assert artifacts == {"sparsity.json", "checkpoint.json"}
        assert Path(kid.data.tags["checkpoint"]).exists()
        assert kid.data.tags.get("ray.node_id")
    sparse = next(k for k in kids if k.data.params["sparsity"] == "0.9")
    local = client.download_artifacts(sparse.info.run_id, "sparsity.json", str(tmp_path))
    layers = yaml.safe_load(Path(local).read_text())
    assert {"actor", "critic"} <= set(layers)
    kept = sum(row["nonzero"] for rows in layers.values() for row in rows)
    total = sum(row["total"] for rows in layers.values() for row in rows)
    assert kept / total == pytest.approx(0.1, abs=0.01)


def test_crashed_trial_is_retried_from_its_checkpoint_with_one_continuous_history(local_sweep):
    tmp_path, run = local_sweep
    assert "retrying from its last checkpoint" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr  # Tune's own report of the crash went to the log file
    log = re.search(r"Ray, Tune and MLflow logs: (\S+)", run.stdout).group(1)
    assert "injected fault" in Path(log).read_text()
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    client, _, kids = children(uri, "tiny")
    assert len(kids) == 2
    crashed = next(k for k in kids if k.info.run_name == "simba-w16-d1-s0.9-seed0")
    assert crashed.info.status == "FINISHED"
    history = client.get_metric_history(crashed.info.run_id, "iteration")
    assert [m.value for m in history] == [1.0, 2.0, 3.0, 4.0]  # restored at 2: no gap, no repeat
    steps = [m.step for m in history]
    assert steps == sorted(set(steps))


def _finished_children(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as con:
        try:
            return con.execute("select count(*) from runs r join tags t on r.run_uuid = t.run_uuid "
                               "where t.key = 'mlflow.parentRunId' and r.status = 'FINISHED'").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


def progress_records(folder: Path) -> dict:
    """Each trial's own progress record (newest checkpoint, done, attempts), by trial folder name."""
    import json

    return {p.parent.name: json.loads(p.read_text())
            for p in (folder / "runs").glob("*/*/*/rllib_sparse_progress.json")}


def test_killed_driver_resumes_and_finishes_the_rest(tmp_path):
    path = sweep_file(tmp_path, grid={"width": [16], "sparsity": [0.0, 0.5, 0.9]}, stop={"iterations": 5},
                      resources={"max_concurrent_trials": 1})
    exe = Path(sys.executable).with_name("rllib-sparse")
    driver = subprocess.Popen([str(exe), "sweep", str(path), "--num-cpus", "2"], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    db = tmp_path / "mlruns" / "mlflow.db"
    deadline = time.time() + 300
    try:
        while _finished_children(db) < 1 and time.time() < deadline and driver.poll() is None:
            time.sleep(1)
        assert driver.poll() is None, "the sweep ended before it could be killed"
        assert _finished_children(db) >= 1
        # A second driver of the same study is refused in one line naming the running one; it starts nothing.
        second = rllib_sparse(["sweep", str(path), "--num-cpus", "2"], cwd=tmp_path, timeout=120)
        errors = [line for line in second.stderr.splitlines() if line.strip()]
        assert second.returncode == 2 and len(errors) == 1, second.stdout[-2000:] + second.stderr[-2000:]
        assert "is in use by another driver" in errors[0] and f"PID {driver.pid} on " in errors[0], errors
        assert len(list((tmp_path / "runs" / "tiny").glob("*.json"))) == 1  # no second sweep record
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the local Ray it started, nothing else
        driver.wait()
    at_kill = progress_records(tmp_path)  # each trial's newest complete checkpoint when the driver died
    assert any(r["done"] for r in at_kill.values())
    resumed = rllib_sparse(["sweep", str(path), "--resume", "--num-cpus", "2"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]
    [log] = (tmp_path / "runs" / "tiny").glob("*.log")  # the resumed sweep's log continues the killed one's
    drivers = re.findall(r"driver pid \d+ on \S+ (starts|resumes) sweep", log.read_text())
    assert drivers == ["starts", "resumes"], drivers
    after = progress_records(tmp_path)
    assert set(after) == {"simba-w16-d1-s0-seed0", "simba-w16-d1-s0.5-seed0", "simba-w16-d1-s0.9-seed0"}
    for name, before in at_kill.items():
        new_attempts = after[name]["attempts"][len(before["attempts"]):]
        if before["done"]:  # finished before the kill: not trained again. Tune restarts it only when its
            # experiment state was saved before the trial ended; the trial then reports and stops.
            assert all(a["already_done"] for a in new_attempts) and len(new_attempts) <= 1, (name, new_attempts)
            if new_attempts:
                assert f"{name:<32} had finished before the interruption; not run again" in resumed.stdout
        else:  # running at the kill: continued from its newest checkpoint, not from Tune's stale one
            assert len(new_attempts) == 1, (name, after[name]["attempts"])
            assert new_attempts[0]["from_iteration"] == before["iteration"], (name, before, new_attempts)
    assert all(r["done"] and r["iteration"] == 5 for r in after.values())
    uri = f"sqlite:///{db}"
    client, parents, kids = children(uri, "tiny")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    names = sorted(k.info.run_name for k in kids)
    assert names == ["simba-w16-d1-s0-seed0", "simba-w16-d1-s0.5-seed0", "simba-w16-d1-s0.9-seed0"]
    assert all(k.info.status == "FINISHED" for k in kids)
    for kid in kids:
        values = [m.value for m in client.get_metric_history(kid.info.run_id, "iteration")]
        assert values == sorted(set(values)) and values[-1] == 5.0


@pytest.mark.parametrize("args,message", [
    (["--address", "127.0.0.1:1"], "--address='127.0.0.1:1' is unreachable"),
    (["--tracking-uri", "http://127.0.0.1:1"], "tracking URI 'http://127.0.0.1:1' is unreachable"),
    (["--set", "grid.widht=[1]"], "grid.widht is not a known axis"),
    (["--resume"], "--resume: no earlier sweep of study 'tiny'"),
    (["--storage", "tiny.yaml"], "--storage='tiny.yaml' is a file"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, args, message):
    run = rllib_sparse(["sweep", str(sweep_file(tmp_path)), *args], cwd=tmp_path)
    assert run.returncode == 2, run.stdout + run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("rllib-sparse: error:")]
    assert len(errors) == 1 and message in errors[0], run.stderr
    assert "WARNING" not in run.stderr, run.stderr
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "runs").exists()


def test_unreachable_or_missing_s3_storage_is_refused_before_anything_starts(tmp_path):
    from servers import s3_server

    cases = {"s3://tune/runs": ({"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}, "--storage='s3://tune/runs' cannot be reached")}
    with s3_server(tmp_path, ("tune",)) as (s3_env, _):
        cases["s3://no-such-bucket/runs"] = ({}, "there is no bucket 'no-such-bucket'")
        for storage, (extra, message) in cases.items():
            run = rllib_sparse(["sweep", str(sweep_file(tmp_path)), "--storage", storage], cwd=tmp_path,
                               env={**s3_env, **extra})
            errors = [line for line in run.stderr.splitlines() if line.startswith("rllib-sparse: error:")]
            assert run.returncode == 2 and len(errors) == 1 and message in errors[0], run.stderr
            assert not (tmp_path / "mlruns").exists() and not (tmp_path / "runs").exists()


#: Each shipped file's smoke run on CPU, shrunk to one trial: its smallest width, sparse (90%), on one env,
#: without the GPU the GPU-sized files ask for. The file's own algorithm, env family, training, reporting,
#: checkpoint and failure settings really build and train through Tune; the other grid points differ only
#: in the numbers the grid sets, and every file's whole grid is planned (each network sized and each env
#: checked) by test_sweep_spec.py::test_every_shipped_sweep_file_validates. Dense and larger networks train
#: in the tests of their own (test_rllib_modules, test_atari, test_dmc, test_streaming_sweeps).
CPU_SMOKE_OVERRIDES = {
    "atari100k_dqn.yaml": ["grid.width=[1]"],
    "atari_ppo_scaling.yaml": ["grid.env=[ALE/Pong-v5]", "grid.width=[1]"],
    "dmc_small_scaling.yaml": ["grid.width=[64]", "evaluation.every_iterations=1", "evaluation.episodes=1"],
    "quickstart.yaml": ["grid.width=[32]"],
    "streaming_scaling.yaml": ["grid.width=[128]", "grid.training.init=[static_mask]"],  # Ant and Walker2d
    "streaming_small.yaml": ["grid.width=[128]", "grid.training.init=[static_mask]"],
    "dmc_hard_scaling.yaml": ["resources.gpus_per_trial=0", "grid.width=[512]", "grid.env=[dmc/humanoid-run]"],
    "dmc_hard_scaling_ddpg.yaml": ["resources.gpus_per_trial=0", "grid.width=[512]", "grid.env=[dmc/dog-run]"],
}


SHIPPED = sorted((REPO / "tune_configs").glob("*.yaml"))
#: Files whose smoke run evaluates (every iteration, one episode: CPU_SMOKE_OVERRIDES); the other DMC
#: files evaluate on the paper's schedule, past a smoke run's end.
EVALUATED_IN_SMOKE = ("dmc_small_scaling.yaml",)

#: Runs every shipped file's smoke sweep in one driver process on one local Ray (as many sweeps in a row
#: on one cluster do), each into a tracking store of its own; writes {file: {rc, stdout, uri}} as JSON.
_SMOKE_DRIVER = """
import contextlib, io, json, sys
from pathlib import Path
import ray
from rllib_sparse.sweep.preflight import SweepInputError, SweepOptions
from rllib_sparse.sweep.runner import run_sweep

jobs, out_file = json.loads(sys.argv[1]), Path(sys.argv[2])
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
results = {}
for name, job in jobs.items():
    folder = Path(job["folder"])
    uri = f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        try:
            rc = run_sweep(SweepOptions(file=Path(job["file"]), overrides=job["overrides"], smoke=True,
                                        tracking_uri=uri, runs_dir=folder / "runs"))
        except SweepInputError as error:
            rc = 2
            print(error)
    results[name] = {"rc": rc, "stdout": stdout.getvalue(), "uri": uri}
    out_file.write_text(json.dumps(results))
ray.shutdown()
"""


@pytest.fixture(scope="module")
def shipped_smokes(tmp_path_factory):
    """Every shipped file's ``--smoke`` sweep (shrunk by CPU_SMOKE_OVERRIDES), tracked in MLflow."""
    import json

    base = tmp_path_factory.mktemp("shipped")
    jobs = {path.name: {"file": str(path), "folder": str(base / path.stem),
                        "overrides": [*CPU_SMOKE_OVERRIDES.get(path.name, []), "grid.sparsity=[0.9]"]}
            for path in SHIPPED}
    results = base / "results.json"
    run = subprocess.run([sys.executable, "-c", _SMOKE_DRIVER, json.dumps(jobs), str(results)], cwd=base,
                         capture_output=True, text=True, timeout=1500)
    found = json.loads(results.read_text()) if results.exists() else {}
    assert found.keys() == jobs.keys(), run.stdout[-2000:] + run.stderr[-3000:]
    return found


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_sweep_file_runs_with_smoke(shipped_smokes, path):
    """The file's one smoke trial trains, is tracked, and keeps its masks exact in every copy."""
    result = shipped_smokes[path.name]
    out = result["stdout"]
    assert result["rc"] == 0, out[-3000:]
    assert "(smoke)" in out and "FAILED" not in out and "Wrote the latest version" not in out
    # MLflow's run table, not its GenAI overview (test_report.py opens it)
    assert re.search(r"runs: http://127\.0\.0\.1:5000/#/experiments/\d+/runs\?workflowType=machine_learning$",
                     out, re.M)
    client = MlflowClient(result["uri"])
    experiment = client.get_experiment_by_name(f"{yaml.safe_load(path.read_text())['name']}-smoke")
    assert experiment.tags.get("mlflow.experimentKind") == "custom_model_development"
    kids = client.search_runs([experiment.experiment_id], "tags.`rllib_sparse.trial` != ''")
    assert kids and all(kid.info.status == "FINISHED" for kid in kids)
    for kid in kids:
        # Every copy of the networks (RLlib: learner, target copies, env runners) at each checkpoint.
        history = client.get_metric_history(kid.info.run_id, "mask/max_masked_weight")
        assert history and all(m.value == 0.0 for m in history), (path.name, kid.info.run_name)
    if path.name in EVALUATED_IN_SMOKE:  # the deterministic policy's return reaches the output and MLflow
        assert "eval return" in out and all(math.isfinite(k.data.metrics["evaluation_return_mean"]) for k in kids)


def test_trial_failing_after_its_retries_exits_1_and_is_named(tmp_path):
    marker = tmp_path / "crashed"
    run = rllib_sparse(["sweep", str(sweep_file(tmp_path, failure={"max_retries": 0})), "--num-cpus", "2"],
                       cwd=tmp_path, env={"RLLIB_SPARSE_INJECT_FAULT": f"s0.9@1@{marker}"})
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-3000:]
    assert "FAILED trials (1): simba-w16-d1-s0.9-seed0" in run.stdout
    client, parents, kids = children(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}", "tiny")
    status = {k.info.run_name: k.info.status for k in kids}
    assert status == {"simba-w16-d1-s0-seed0": "FINISHED", "simba-w16-d1-s0.9-seed0": "FAILED"}
    assert parents[0].info.status == "FAILED"


def test_malformed_file_exits_2_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: tiny\nstop: {iterations: 1\n")
    run = rllib_sparse(["sweep", str(bad)], cwd=tmp_path)
    assert run.returncode == 2 and f"{bad}: not valid YAML at line" in run.stderr
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "runs").exists()
