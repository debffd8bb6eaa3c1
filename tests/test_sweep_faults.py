"""Faults and mistakes around a real sweep: a real local Ray, real MLflow stores and servers, real kills.

Covered here: a trial no node can host (refused within seconds, nothing written); a killed sweep followed
by ``--resume`` of a different study (refused) and by a new sweep (the old runs are closed); a
sweep tracked over HTTP by a real MLflow server that goes down twice: in the middle of it (no metric
lost; a dozen seconds of outage spans several of the tracker's retry rounds, which is what is tested,
not the length), then until after its end (records kept on disk, sent by ``--resume``).
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rllib_sparse.sweep.mlflow_server import local_mlflow_server
from test_sweep_run import children, rllib_sparse, sweep_file

pytestmark = pytest.mark.ray


def one_error(run) -> str:
    assert run.returncode == 2, run.stdout[-2000:] + run.stderr[-2000:]
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr
    return lines[0]


@pytest.mark.parametrize("resources,expected", [
    ({"cpus_per_trial": 64}, "resources: each trial needs 64 CPU (resources.cpus_per_trial=64, gpus_per_trial=0, "
                             "num_env_runners=0), but the cluster has 2 CPU (at most 2 on one node)"),
    ({"gpus_per_trial": 1}, "resources: each trial needs 1 GPU"),
])
def test_a_trial_no_node_can_host_is_refused_before_anything_is_written(tmp_path, resources, expected):
    run = rllib_sparse(["sweep", str(sweep_file(tmp_path, resources=resources)), "--num-cpus", "2"],
                       cwd=tmp_path, timeout=120)
    assert expected in one_error(run)
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "runs").exists()


def test_killed_sweep_then_other_study_resume_is_refused_and_a_new_sweep_closes_the_old_runs(tmp_path):
    path = sweep_file(tmp_path, stop={"iterations": 200}, resources={"max_concurrent_trials": 1})
    exe = Path(sys.executable).with_name("rllib-sparse")
    output = tmp_path / "driver.out"
    driver = subprocess.Popen([str(exe), "sweep", str(path), "--num-cpus", "2"], cwd=tmp_path,
                              stdout=open(output, "w"), stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    deadline = time.time() + 180
    try:
        while time.time() < deadline and driver.poll() is None:
            # Only once the driver has written its record (after it made the MLflow store): a client
            # opening a store that is still being created runs the schema migration a second time.
            if list((tmp_path / "runs" / "tiny").glob("*.json")):
                try:
                    _, _, kids = children(uri, "tiny")
                    if kids and kids[0].data.metrics:
                        break
                except Exception:  # the store is being created
                    pass
            time.sleep(1)
        assert driver.poll() is None, f"the sweep ended ({driver.returncode}) before it could be killed: " \
                                      f"{output.read_text()[-3000:]}"
    finally:
        with contextlib.suppress(ProcessLookupError):  # already gone: the assertion above says why
            os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    _, parents, kids = children(uri, "tiny")
    assert parents[0].info.status == "RUNNING" and any(k.info.status == "RUNNING" for k in kids)

    refused = rllib_sparse(["sweep", str(path), "--smoke", "--resume", "--num-cpus", "2"], cwd=tmp_path)
    line = one_error(refused)
    assert "--resume: this is not the study that was interrupted" in line and "smoke: false -> true" in line
    assert "stop.iterations: 200 -> 2" in line

    fresh = rllib_sparse(["sweep", str(path), "--smoke", "--num-cpus", "2"], cwd=tmp_path)
    assert fresh.returncode == 0, fresh.stdout[-2000:] + fresh.stderr[-2000:]
    assert "note: the earlier sweep" in fresh.stdout and "now marked KILLED in MLflow" in fresh.stdout
    _, parents, kids = children(uri, "tiny")
    assert parents[0].info.status == "KILLED" and not any(k.info.status == "RUNNING" for k in kids)
    _, smoke_parents, _ = children(uri, "tiny-smoke")
    assert [p.info.status for p in smoke_parents] == ["FINISHED"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _histories_complete(uri: str, iterations: int) -> None:
    client, parents, kids = children(uri, "tiny")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(k.info.run_name for k in kids) == ["simba-w16-d1-s0-seed0", "simba-w16-d1-s0.9-seed0"]
    for kid in kids:
        assert kid.info.status == "FINISHED"
        values = [m.value for m in client.get_metric_history(kid.info.run_id, "iteration")]
        assert values == [float(i) for i in range(1, iterations + 1)], (kid.info.run_name, values)
        assert {a.path for a in client.list_artifacts(kid.info.run_id)} == {"sparsity.json", "checkpoint.json"}
        # One return per iteration that ended an episode (every one of CartPole's first iterations does; a
        # later one may not, once episodes outgrow the 200-step batch), at that iteration's env steps.
        steps = [m.step for m in client.get_metric_history(kid.info.run_id, "iteration")]
        returns = [m.step for m in client.get_metric_history(kid.info.run_id, "episode_return_mean")]
        assert returns[:3] == steps[:3] and returns == sorted(set(returns)) and set(returns) <= set(steps)


#: Long enough for several of the tracker's retry rounds (0.5, 1, 2, 5 s apart) and for iterations to be
#: journaled while the server is down; the behaviour does not depend on the outage's length.
OUTAGE_S = 12


def _read(folder: Path) -> str:
    return (folder / "sweep.out").read_text()


def _wait_for_text(folder: Path, driver, text: str, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and driver.poll() is None and text not in _read(folder):
        time.sleep(0.3)
    assert text in _read(folder), f"{text!r} never came: {_read(folder)[-3000:]}"


def test_a_sweep_tracks_over_http_through_outages_and_resume_sends_what_outlasted_it(tmp_path):
    """One real sweep tracked by a real MLflow server that goes down twice: the first outage, in the middle
    of the sweep, is bridged (no metric lost, the output says when it starts and ends); the second lasts
    past the end of the sweep, whose records stay in the journal (exit 1) until ``--resume`` sends them."""
    # Iterations take 0.2-0.5 s here: 200 outlast the first outage and the server's restart twice over.
    port, iterations = _free_port(), 200
    path = sweep_file(tmp_path, stop={"iterations": iterations}, checkpoint={"frequency": 50})
    exe = Path(sys.executable).with_name("rllib-sparse")
    log = open(tmp_path / "sweep.out", "w")
    with local_mlflow_server(tmp_path / "server", port) as uri:
        driver = subprocess.Popen([str(exe), "sweep", str(path), "--tracking-uri", uri, "--num-cpus", "2"],
                                  cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                  env={**os.environ, "RLLIB_SPARSE_TRACKING_FLUSH_TIMEOUT": "5"})
        try:
            _wait_for_text(tmp_path, driver, "iter    3", 180)
            assert driver.poll() is None, _read(tmp_path)[-3000:]
        except BaseException:
            os.killpg(driver.pid, signal.SIGKILL)
            raise
    try:
        time.sleep(OUTAGE_S)  # the first outage: the server is down, the sweep goes on
        assert "is unreachable; records are kept in" in _read(tmp_path)
        with local_mlflow_server(tmp_path / "server", port):
            _wait_for_text(tmp_path, driver, "is back after", 120)
        # The second outage lasts until the sweep has ended: its last records cannot be sent.
        assert driver.wait(timeout=420) == 1, _read(tmp_path)[-3000:]
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
        log.close()
    output = _read(tmp_path)
    assert "Traceback" not in output and f"MLflow: open {uri}" in output
    assert "View run" not in output  # MLflow's own lines stay out of the progress output
    assert f"send them with: rllib-sparse sweep {path} --resume" in output
    assert f"iter {iterations:>4}" in output  # the sweep trained to its end through both outages
    refused = rllib_sparse(["sweep", str(path), "--resume"], cwd=tmp_path, timeout=120)  # the server is still down
    line = one_error(refused)
    assert f"tracking URI '{uri}' is unreachable" in line and "the tracking URI the interrupted sweep used" in line
    journal = next((tmp_path / "runs" / "tiny").glob("*.mlflow-journal.jsonl"))
    unsent = [json.loads(line) for line in journal.read_text().splitlines()]
    assert any(r["op"] == "metrics" for r in unsent)
    with local_mlflow_server(tmp_path / "server", port) as uri:
        resumed = rllib_sparse(["sweep", str(path), "--resume", "--num-cpus", "2"], cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
        assert "MLflow record(s) the interrupted driver had not sent" in resumed.stdout
        assert " started" not in resumed.stdout  # the trials had finished: nothing is trained again
        assert "width \\ sparsity" in resumed.stdout  # and the summary still shows their results
        _histories_complete(uri, iterations)
    assert not journal.exists()  # all sent, journal gone
    assert not (tmp_path / "mlruns").exists()  # nothing went to the embedded default
