"""A tracking store that cannot take records: full, read-only, slow to answer, or with a damaged journal.

Real stores only: SQLite files written by MLflow's own client, a real ``mlflow server`` (behind a
delaying TCP relay for the slow one), a real sweep whose driver gets a file-size limit mid-run
(``resource.prlimit``: any file it grows past the limit fails with EFBIG, as on a full disk). Read-only
files are made with ``chattr +i`` (the tests run as root, which ignores permission bits).
"""

import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, TEMPORARILY_UNAVAILABLE
from mlflow.tracking import MlflowClient

from rllib_sparse.sweep.mlflow_server import local_mlflow_server
from rllib_sparse.sweep.tracking import SweepTracker, check_tracking_uri, store_cannot_write
from servers import free_port
from test_sweep_run import children, rllib_sparse, sweep_file


def test_a_full_read_only_or_locked_store_is_an_outage_and_only_an_invalid_record_is_rejected():
    assert store_cannot_write(MlflowException("(sqlite3.OperationalError) disk I/O error",
                                              error_code=TEMPORARILY_UNAVAILABLE))
    assert store_cannot_write(OSError(28, "No space left on device"))
    assert store_cannot_write(MlflowException("API request failed with error code 502"))  # INTERNAL_ERROR
    assert not store_cannot_write(MlflowException("Changing param values is not allowed",
                                                  error_code=INVALID_PARAMETER_VALUE))
    assert not store_cannot_write(KeyError("no MLflow run for trial 'x'"))


@pytest.fixture
def tracker(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    tracker = SweepTracker(uri, "faults")
    tracker.start_parent("faults-1")
    return tracker


def _metric_steps(tracker: SweepTracker, name: str, key: str = "iteration") -> list[int]:
    return [m.step for m in tracker.client.get_metric_history(tracker._run_id(name), key)]


def test_a_damaged_ack_file_sends_the_journal_again_and_changes_nothing_twice(tracker, tmp_path):
    journal = tmp_path / "sweep.mlflow-journal.jsonl"
    notes: list[str] = []
    tracker.notify = notes.append
    tracker.start_sending(journal)
    tracker.child_run("trial-a", "t1", {"width": 16}, {})
    for step in (10, 20, 30):
        tracker.log_metrics("trial-a", {"iteration": step / 10, "episode_return_mean": float("nan")}, step)
    assert tracker.wait_until_sent(30) == 0
    # A second driver (--resume) finds the journal, and an .acked file a crash left damaged.
    lines = journal.read_text().splitlines()
    journal.with_suffix(".acked").write_text("\x00\x00")
    again = SweepTracker(tracker.uri, "faults")
    again.notify = notes.append
    again.parent_run_id = tracker.parent_run_id
    assert again.start_sending(journal) == len(lines)  # every record is queued again, no traceback
    assert again.close(30) == 0
    assert any("is damaged" in note and ".acked" in note for note in notes), notes
    assert _metric_steps(again, "trial-a") == [10, 20, 30]  # sent twice, recorded once
    nan = again.client.get_metric_history(again._run_id("trial-a"), "episode_return_mean")
    assert len(nan) == 3 and all(m.value != m.value for m in nan)  # NaN logged as NaN, not dropped


def test_a_record_the_store_rejects_is_set_aside_beside_the_journal(tracker, tmp_path):
    journal = tmp_path / "sweep.mlflow-journal.jsonl"
    tracker.start_sending(journal)
    tracker.child_run("trial-b", "t2", {"width": 16}, {})
    tracker.child_run("trial-b", "t2", {"width": 32}, {})  # a param logged again with another value
    tracker.log_metrics("trial-b", {"iteration": 1.0}, 100)
    assert tracker.close(60) == 0
    assert len(tracker.rejected) == 1 and "child for trial-b" in tracker.rejected[0]
    [kept] = [json.loads(line) for line in tracker.rejected_file.read_text().splitlines()]
    assert kept["record"]["params"] == {"width": "32"} and "param" in kept["error"].lower()
    assert _metric_steps(tracker, "trial-b") == [100]  # the records after it went on


def _immutable(path: Path) -> contextlib.AbstractContextManager:
    """``chattr +i`` for the duration (undone even when the test fails); skips where unsupported."""
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
        pytest.skip("chattr +i is not available here (needs root on ext4/xfs/btrfs)")

    @contextlib.contextmanager
    def held():
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    return held()


@pytest.mark.parametrize("frozen", ["store", "artifacts"])
def test_a_read_only_store_or_artifact_folder_is_refused_before_anything_starts(tmp_path, frozen):
    db = tmp_path / "mlruns" / "mlflow.db"
    client = MlflowClient(f"sqlite:///{db}")
    client.create_experiment("tiny", artifact_location=(db.parent / "artifacts").as_uri())
    (db.parent / "artifacts").mkdir()
    target = db if frozen == "store" else db.parent / "artifacts"
    with _immutable(target):
        run = rllib_sparse(["sweep", str(sweep_file(tmp_path)), "--num-cpus", "2"], cwd=tmp_path, timeout=120)
    errors = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.returncode == 2 and len(errors) == 1, run.stdout[-2000:] + run.stderr[-2000:]
    what = "the store" if frozen == "store" else "its artifact folder"
    assert f"{what} {target}" in errors[0] and "cannot be written" in errors[0], errors
    assert not client.search_runs([client.get_experiment_by_name("tiny").experiment_id])  # no parent run
    assert not (tmp_path / "runs").exists()


class _SlowRelay:
    """A TCP relay to a real server that holds every request for ``delay`` seconds until ``slow_until``:
    a server that takes connections but is slow to answer (starting behind a proxy, migrating)."""

    def __init__(self, target_port: int, delay: float, slow_for: float):
        self.target, self.delay, self.slow_until = target_port, delay, time.time() + slow_for
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client):
        if time.time() < self.slow_until:
            time.sleep(self.delay)
        with client, socket.create_connection(("127.0.0.1", self.target)) as upstream:
            back = threading.Thread(target=self._pipe, args=(upstream, client), daemon=True)
            back.start()
            self._pipe(client, upstream)
            back.join(timeout=30)

    @staticmethod
    def _pipe(source, target):
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
            target.shutdown(socket.SHUT_WR)

    def close(self):
        self.server.close()


def test_a_server_slow_to_answer_is_asked_again_within_the_budget(tmp_path):
    with local_mlflow_server(tmp_path / "server", free_port()) as uri:
        port = int(uri.rsplit(":", 1)[1])
        relay = _SlowRelay(port, delay=2.5, slow_for=4)
        try:
            slow = f"http://127.0.0.1:{relay.port}"
            check_tracking_uri(slow, timeout=1, budget=30)  # timed out at first, answered once it could
            relay.slow_until = time.time() + 60
            with pytest.raises(ValueError) as refused:
                check_tracking_uri(slow, timeout=1, budget=2)
        finally:
            relay.close()
    message = str(refused.value)
    assert "did not answer /health within 2 s" in message and "RLLIB_SPARSE_TRACKING_CONNECT_BUDGET" in message
    assert "not an MLflow tracking server" not in message and "\n" not in message


class _Terminal:
    """The driver's stdout through a pipe (a terminal is not a file: the file-size limit must not cut it)."""

    def __init__(self, process: subprocess.Popen):
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream):
        for line in stream:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def close(self) -> str:
        self._thread.join(timeout=30)
        return self.text


@pytest.mark.ray
def test_a_store_that_fills_up_mid_sweep_loses_no_record_and_ctrl_c_counts_every_unfinished_trial(tmp_path):
    path = sweep_file(tmp_path, stop={"iterations": 8}, resources={"max_concurrent_trials": 1})
    exe = Path(sys.executable).with_name("rllib-sparse")
    env = {**os.environ, "RLLIB_SPARSE_TRACKING_FLUSH_TIMEOUT": "4"}
    driver = subprocess.Popen([str(exe), "sweep", str(path), "--num-cpus", "2"], cwd=tmp_path, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    terminal = _Terminal(driver)
    db = tmp_path / "mlruns" / "mlflow.db"
    try:
        deadline = time.time() + 180
        while time.time() < deadline and driver.poll() is None and "iter    2" not in terminal.text:
            time.sleep(0.3)
        assert driver.poll() is None, terminal.text[-3000:]
        # The store's disk is full from here on: no file the driver writes may grow past the store's size
        # (its Ray processes, started earlier, keep their own limits: trials still train and checkpoint).
        resource.prlimit(driver.pid, resource.RLIMIT_FSIZE, (db.stat().st_size, resource.RLIM_INFINITY))
        while time.time() < deadline and not ("iter    5" in terminal.text and "cannot be written" in terminal.text):
            time.sleep(0.3)
        assert "cannot be written; records are kept in" in terminal.text, terminal.text[-3000:]
        os.killpg(driver.pid, signal.SIGINT)  # Ctrl-C while the first trial runs and the second has not started
        assert driver.wait(timeout=180) == 1, terminal.text[-3000:]
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
    text = terminal.close()
    assert "Logging error" not in text and text.count("Traceback") == 0, text[-3000:]
    assert text.count("cannot be written") <= 3, text[-3000:]  # said once, not per record
    assert "interrupted: 2 of 2 trial(s) unfinished" in text, text[-2000:]
    assert "* not finished: the return when the sweep was interrupted" in text
    unsent = [line for line in text.splitlines() if "did not take" in line]
    assert len(unsent) == 1 and "disk I/O error" in unsent[0] and "--resume" in unsent[0], text[-2000:]
    journal = next((tmp_path / "runs" / "tiny").glob("*.mlflow-journal.jsonl"))
    assert journal.exists()
    # Room again: --resume sends every kept record and trains what is left.
    resumed = rllib_sparse(["sweep", str(path), "--resume", "--num-cpus", "2"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    client, parents, kids = children(f"sqlite:///{db}", "tiny")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(k.info.status for k in kids) == ["FINISHED", "FINISHED"]
    for kid in kids:
        values = [m.value for m in client.get_metric_history(kid.info.run_id, "iteration")]
        assert values == [float(i) for i in range(1, 9)], (kid.info.run_name, values)
    assert not journal.exists()
