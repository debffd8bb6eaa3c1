"""MLflow tracking of a sweep: one experiment per study, a parent run per sweep, a child run per trial.

Everything is logged from the sweep driver (a Tune ``Callback``), never from the trials: the experiment
and parent run exist before any trial starts (no creation race), a dead trial's run is still ended
FAILED, and each trial iteration costs exactly one ``log_batch`` call. Child runs are found again by
their ``rllib_sparse.trial`` tag, so a resumed sweep or a retried trial continues its own run.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import re
import sqlite3
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

import rllib_sparse
from rllib_sparse.metrics import SWEEP_TAG, TRIAL_TAG
from rllib_sparse.sweep.journal import JournaledSender, first_line

PARENT_TAG = "mlflow.parentRunId"


def default_tracking_uri(root: Path | None = None) -> str:
    """The embedded default: a SQLite store under ``./mlruns/`` (MLflow 3 refuses the file store)."""
    folder = (root or Path.cwd()) / "mlruns"
    return f"sqlite:///{(folder / 'mlflow.db').resolve()}"


def sqlite_path(uri: str) -> Path:
    """The database file of a ``sqlite:`` URI as SQLAlchemy reads it: ``sqlite:///rel.db`` is relative
    to the working directory, ``sqlite:////abs/x.db`` absolute."""
    return Path(urlparse(uri).path[1:] or ":memory:")


#: Schemes MLflow's SQLAlchemy store takes (``postgresql+psycopg2://`` and the like count too).
_DATABASE_SCHEMES = ("postgresql", "mysql", "mssql")
_ALLOWED_URIS = ("sqlite:///PATH.db, http(s)://HOST:PORT of an MLflow server, "
                 "or postgresql:// / mysql:// / mssql:// database URIs")


def check_tracking_uri(uri: str, timeout: float = 5.0, budget: float = 60.0, write: bool = True) -> None:
    """Raise a one-line ValueError unless the tracking store can be reached (or created) and, with
    ``write``, written (a SQLite file and its artifact folder; a server's own storage cannot be checked
    from here). Leaves nothing behind.

    A server that accepts the connection but is slow to answer (starting up, migrating its database) is
    asked again, each call waiting ``timeout`` seconds, until ``budget`` seconds have passed: a timeout is
    not a wrong answer.
    """
    scheme = urlparse(uri).scheme
    if scheme in ("http", "https"):
        deadline = time.monotonic() + budget
        while True:
            try:
                _check_server(uri, timeout)
                return
            except _SlowAnswer as slow:
                if time.monotonic() + timeout > deadline:
                    raise ValueError(f"tracking URI {uri!r} did not answer {slow.path} within {budget:g} s "
                                     f"({timeout:g} s per call); allowed: a running MLflow server, or more time "
                                     f"with {CONNECT_BUDGET_ENV}=SECONDS") from None
    elif scheme == "sqlite":
        _check_sqlite(uri, write)
    elif scheme.split("+")[0] in _DATABASE_SCHEMES:
        _check_database(uri, timeout)
    elif scheme in ("file", ""):
        raise ValueError(f"tracking URI {uri!r}: the file store is disabled in MLflow 3; allowed: {_ALLOWED_URIS}")
    else:
        raise ValueError(f"tracking URI {uri!r} has an unsupported scheme {scheme!r}; allowed: {_ALLOWED_URIS}")


#: Seconds the pre-flight keeps asking a tracking server that is slow to answer (default 60).
CONNECT_BUDGET_ENV = "RLLIB_SPARSE_TRACKING_CONNECT_BUDGET"


class _SlowAnswer(Exception):
    """The server took the connection but did not answer within the per-call timeout."""

    def __init__(self, path: str):
        super().__init__(path)
        self.path = path


def _timed_out(error: BaseException) -> bool:
    reason = getattr(error, "reason", error)
    return isinstance(reason, TimeoutError) or "timed out" in str(reason)


def _check_server(uri: str, timeout: float) -> None:
    base = uri.rstrip("/")
    try:
        with urllib.request.urlopen(base + "/health", timeout=timeout) as response:
            if response.status != 200:
                raise OSError(f"HTTP {response.status}")
    except (OSError, urllib.error.URLError) as error:
        if _timed_out(error):
            raise _SlowAnswer("/health") from None
        reason = getattr(error, "reason", error)
        raise ValueError(f"tracking URI {uri!r} is unreachable ({reason}); allowed: a running MLflow "
                         "server (http://HOST:PORT) or a sqlite:/// path") from None
    # Anything can answer /health; only MLflow answers its REST API with MLflow's JSON.
    probe = base + "/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default"
    try:
        with urllib.request.urlopen(probe, timeout=timeout) as response:
            body = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        try:
            body = json.loads(error.read() or b"{}")
        except ValueError:
            body = {}
    except (OSError, ValueError) as error:
        if _timed_out(error):
            raise _SlowAnswer("/api/2.0/mlflow") from None
        body = {}
    if not isinstance(body, dict) or not ("experiment" in body or "error_code" in body):
        raise ValueError(f"tracking URI {uri!r} answers, but not as an MLflow tracking server (its REST API "
                         "/api/2.0/mlflow is missing); allowed: the address of `mlflow server`")


def _check_sqlite(uri: str, write: bool = True) -> None:
    path = sqlite_path(uri)
    if path.exists():
        if not path.is_file():
            raise ValueError(f"tracking URI {uri!r}: {path} is a folder, not a database file; "
                             "allowed: sqlite:///PATH.db")
        try:
            with contextlib.closing(sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)) as db:
                db.execute("PRAGMA schema_version").fetchone()
        except sqlite3.DatabaseError as error:
            raise ValueError(f"tracking URI {uri!r}: {path} is not an SQLite database ({error}); "
                             "allowed: an MLflow SQLite store, or a path where none exists yet") from None
        if write:
            _check_sqlite_writable(uri, path)
            _check_folder_writable(uri, path.resolve().parent / "artifacts", "its artifact folder")
        return
    for parent in path.resolve().parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"tracking URI {uri!r}: {parent} is a file, so the store cannot be created "
                                 "there; allowed: a path inside a folder")
            if not os.access(parent, os.W_OK):
                raise ValueError(f"tracking URI {uri!r}: {parent} is not writable; allowed: a writable folder")
            return


def _check_sqlite_writable(uri: str, path: Path) -> None:
    """Write to the store inside a transaction and roll it back (nothing stays): fails on a read-only or
    immutable file, a read-only mount, or a folder where SQLite cannot make its rollback journal."""
    problem = None
    try:
        with contextlib.closing(sqlite3.connect(str(path.resolve()), timeout=5, isolation_level=None)) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("CREATE TABLE rllib_sparse_write_check (x INTEGER)")
            finally:
                db.execute("ROLLBACK")
    except sqlite3.Error as error:
        problem = str(error)
    if problem is None and not os.access(path.resolve().parent, os.W_OK):
        problem = f"{path.resolve().parent} is not writable"
    if problem is not None:
        raise ValueError(f"tracking URI {uri!r}: the store {path} cannot be written ({problem}); allowed: a "
                         "writable SQLite store (check its permissions, its folder's, and free space)")


def _check_folder_writable(uri: str, folder: Path, what: str) -> None:
    """A folder the store will write into: it, or the nearest folder above that exists, takes a file."""
    existing = next((f for f in (folder, *folder.parents) if f.exists()), None)
    if existing is None or not existing.is_dir():
        return
    try:
        handle, probe = tempfile.mkstemp(prefix=".rllib-sparse-write-check-", dir=existing)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise ValueError(f"tracking URI {uri!r}: {what} {folder} cannot be written ({error.strerror or error}); "
                         "allowed: a writable folder") from None


def _check_database(uri: str, timeout: float) -> None:
    import sqlalchemy

    safe = re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", uri)  # never print a password
    try:
        engine = sqlalchemy.create_engine(uri, connect_args={"connect_timeout": int(timeout)}
                                          if uri.startswith(("postgresql", "mysql")) else {})
    except ModuleNotFoundError as error:
        raise ValueError(f"tracking URI {safe!r}: its database driver is not installed ({error}); allowed: "
                         "install it (e.g. pip install psycopg2-binary for postgresql, pymysql for "
                         "mysql+pymysql)") from None
    except Exception as error:  # sqlalchemy.exc.ArgumentError and kin
        raise ValueError(f"tracking URI {safe!r} is not a valid database URI ({first_line(error)})") from None
    try:
        with engine.connect():
            pass
    except Exception as error:  # OperationalError, driver errors: many lines
        raise ValueError(f"tracking URI {safe!r} is unreachable ({first_line(error)})") from None
    finally:
        engine.dispose()


def ui_command(uri: str) -> str:
    if urlparse(uri).scheme == "sqlite":
        return f"mlflow ui --backend-store-uri {uri}"
    return f"open {uri}"


def runs_view(uri: str, experiment_id: str) -> str:
    """The address of an experiment's run table in MLflow's UI (``mlflow ui``'s default port for a file store).

    MLflow 3.17's UI has one browser-wide mode, "GenAI" by default (kept in the browser's local storage,
    whatever the experiment's tags say), in which an experiment opens on a traces overview saying
    "No data". ``workflowType=machine_learning`` in the address switches that browser to the model
    training mode, where an experiment opens on its runs (tests/test_report.py checks it in Chromium).
    """
    base = "http://127.0.0.1:5000" if urlparse(uri).scheme in ("sqlite", "file", "") else uri.rstrip("/")
    return f"{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


@functools.lru_cache(maxsize=1)
def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(rllib_sparse.__file__).parent)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except OSError:
        return None


def _version_tags() -> dict[str, str]:
    """rllib-sparse and Ray versions, and the git commit when the package runs from a checkout."""
    import ray

    tags = {"rllib_sparse.version": rllib_sparse.__version__, "ray.version": ray.__version__}
    if commit := _git_commit():
        tags["git.commit"] = commit
    return tags


#: How the MLflow client of a sweep driver talks HTTP: fail fast and let the tracker's own retry loop
#: wait out an outage (MLflow's default is 7 retries with backoff, ~4 minutes of blocking per call).
_CLIENT_SETTINGS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "15",
                    # set_terminated prints "View run ..." lines over HTTP; the progress output is ours.
                    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
#: HTTP statuses (MLflow's error codes map onto them) that say the store cannot take any record now:
#: 5xx (a full disk, a read-only or locked database, an I/O error: MLflow's SQL store answers
#: TEMPORARILY_UNAVAILABLE), an expired credential, a rate limit, a timeout.
_STORE_STATUSES = (401, 403, 408, 429)


def store_cannot_write(error: BaseException) -> bool:
    """Whether a failed write is the store's fault (an outage: keep the record and try again) rather than
    the record's (MLflow rejects it as invalid, e.g. a param logged again with another value).

    Disk full, file too large, read-only, locked and I/O errors reach here as MLflow's
    TEMPORARILY_UNAVAILABLE (SQL stores), HTTP 5xx (servers) or an ``OSError`` (artifacts on a local
    folder; connection errors).
    """
    from mlflow.exceptions import MlflowException

    if isinstance(error, MlflowException):
        status = error.get_http_status_code()
        return status >= 500 or status in _STORE_STATUSES
    if isinstance(error, OSError):
        return True
    return type(error).__module__.startswith("sqlalchemy") and type(error).__name__ == "OperationalError"


#: The experiment's kind for MLflow 3's UI: model training, not GenAI. MLflow 3.17 reads it only in its
#: per-experiment mode; its default browser-wide mode ignores it (``runs_view`` says what works there).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING_KIND = "custom_model_development"


class SweepTracker:
    """The MLflow side of one sweep (driver only).

    The parent run is made synchronously, so a sweep starts only once tracking works. After
    ``start_sending(journal)``, every other write is a record appended to a journal file and sent by a
    background thread, in order (``journal.JournaledSender``): the Tune loop never waits for MLflow, a
    tracking outage only delays the records (the thread retries until the store is back), and records
    not yet sent when the driver dies are sent by the next ``--resume`` (``close`` says how many are
    pending). Without ``start_sending`` every write is sent at once (scripts, tests). This class says
    what a record means to MLflow (``_send``) and which failures are the store's (``store_cannot_write``).
    """

    def __init__(self, uri: str, experiment: str):
        for key, value in _CLIENT_SETTINGS.items():
            os.environ.setdefault(key, value)
        self.uri = uri
        if urlparse(uri).scheme == "sqlite":
            sqlite_path(uri).parent.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(uri)
        self.experiment_id = self._experiment(experiment)
        self.parent_run_id: str | None = None
        self._child: dict[str, str] = {}  # trial name -> run id (sender side)
        self._last_step: dict[str, float] = {}  # trial name -> highest step logged or queued
        self.notify = lambda line: None  # outage start/end lines, for the progress output
        self.sender = JournaledSender(self._send, store_cannot_write, self._reachable, uri,
                                      notify=lambda line: self.notify(line))

    # ------------------------------------------------------------------------ synchronous set-up

    def _experiment(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            if EXPERIMENT_KIND_TAG not in found.tags:  # made by an older version or by hand: ours now
                self.client.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND)
            return found.experiment_id
        location = None
        if urlparse(self.uri).scheme == "sqlite":
            location = (sqlite_path(self.uri).resolve().parent / "artifacts").as_uri()
        return self.client.create_experiment(name, artifact_location=location,
                                             tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING_KIND})

    def start_parent(self, sweep_name: str, run_id: str | None = None, params: dict | None = None,
                     sweep_file: Path | None = None) -> str:
        """Create the sweep's parent run, or reopen ``run_id`` (``--resume``)."""
        if run_id is not None:
            self.parent_run_id = run_id
            self.client.update_run(run_id, status="RUNNING")
            self.load_children()
            return run_id
        run = self.client.create_run(self.experiment_id, tags={SWEEP_TAG: sweep_name, **_version_tags()},
                                     run_name=sweep_name)
        self.parent_run_id = run.info.run_id
        try:
            if params:
                self.client.log_batch(self.parent_run_id, params=[Param(k, str(v)) for k, v in params.items()])
            if sweep_file is not None:
                self.client.log_artifact(self.parent_run_id, str(sweep_file))
        except BaseException:
            with contextlib.suppress(Exception):  # never leave a parent RUNNING for a sweep that did not start
                self.client.set_terminated(self.parent_run_id, status="FAILED")
            raise
        return self.parent_run_id

    def load_children(self) -> None:
        """Learn the parent's existing child runs and how far each one's history goes."""
        for run in self._children():
            name = run.data.tags[TRIAL_TAG]
            self._child[name] = run.info.run_id
            self._last_step[name] = max(self._last_step.get(name, -math.inf), self._max_step(run))

    def _children(self, trial_name: str | None = None):
        query = f"tags.`{PARENT_TAG}` = '{self.parent_run_id}'"
        if trial_name is not None:
            query += f" and tags.`{TRIAL_TAG}` = '{trial_name}'"
        return self.client.search_runs([self.experiment_id], filter_string=query, max_results=10_000)

    def _max_step(self, run) -> float:
        histories = [self.client.get_metric_history(run.info.run_id, key) for key in run.data.metrics]
        return max((m.step for h in histories for m in h), default=-math.inf)

    def close_interrupted(self, run_id: str) -> int:
        """Mark an interrupted sweep's parent run and its RUNNING children KILLED; how many were.

        Call before ``start_parent``. The old sweep may be in another experiment (``--smoke`` then a
        full sweep of the same file), so its children are searched in the parent's own experiment.
        """
        parent = self.client.get_run(run_id)
        query = f"tags.`{PARENT_TAG}` = '{run_id}' and attributes.status = 'RUNNING'"
        closed = 0
        for run in self.client.search_runs([parent.info.experiment_id], filter_string=query, max_results=10_000):
            self.client.set_terminated(run.info.run_id, status="KILLED")
            closed += 1
        if parent.info.status == "RUNNING":
            self.client.set_terminated(run_id, status="KILLED")
        return closed

    # ------------------------------------------------------------------------ the records

    def child_run(self, trial_name: str, trial_id: str, params: dict[str, Any], tags: dict[str, str]) -> None:
        """The trial's run: reopened if it exists (retry, resume), else created with its params."""
        self._last_step.setdefault(trial_name, -math.inf)
        self._record({"op": "child", "trial": trial_name, "trial_id": trial_id,
                      "params": {k: str(v) for k, v in params.items()},
                      "tags": {k: str(v) for k, v in tags.items()}})

    def has_run(self, trial_name: str) -> bool:
        """Whether the trial's run exists or is queued (it started in this sweep, or before a resume)."""
        return trial_name in self._last_step

    def log_metrics(self, trial_name: str, metrics: dict[str, float], step: int) -> bool:
        """One batched call per iteration. Steps at or below the last logged one (a trial re-running
        iterations after a restore) are skipped, so every run keeps one continuous history."""
        if step <= self._last_step.get(trial_name, -math.inf):
            return False
        self._last_step[trial_name] = step
        # NaN and infinities are logged as what they are (MLflow keeps NaN; it stores +-inf as +-max float):
        # a diverged trial must show it, not go quiet.
        values = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
        if values:
            self._record({"op": "metrics", "trial": trial_name, "values": values, "step": int(step),
                          "time": int(time.time() * 1000)})
        return True

    def log_dict(self, trial_name: str, data: dict, artifact_file: str) -> None:
        self._record({"op": "dict", "trial": trial_name, "data": data, "file": artifact_file})

    def set_tags(self, trial_name: str, tags: dict[str, str]) -> None:
        self._record({"op": "tags", "trial": trial_name, "tags": {k: str(v) for k, v in tags.items()}})

    def end_trial(self, trial_name: str, status: str) -> None:
        self._record({"op": "end", "trial": trial_name, "status": status, "time": int(time.time() * 1000)})

    def end_parent(self, status: str) -> None:
        if self.parent_run_id is not None:
            self._record({"op": "end", "trial": None, "status": status, "time": int(time.time() * 1000)})

    # ------------------------------------------------------------------------ sending

    def _record(self, record: dict) -> None:
        self.sender.add(record)

    def start_sending(self, journal: Path) -> int:
        """Send every later write from a background thread, journaled in ``journal`` first. Records a
        previous driver journaled but never sent are queued first; returns how many there were."""
        return self.sender.start(journal)

    @property
    def journal(self) -> Path | None:
        """The journal file, once ``start_sending`` was called."""
        return self.sender.journal

    @property
    def rejected(self) -> list[str]:
        """Records MLflow refused as invalid, set aside beside the journal (one line each)."""
        return self.sender.rejected

    @property
    def rejected_file(self) -> Path | None:
        return self.sender.rejected_file

    @property
    def outage_since(self) -> float | None:
        return self.sender.outage_since

    @property
    def outage_reason(self) -> str:
        return self.sender.outage_reason

    def wait_until_sent(self, timeout: float) -> int:
        """Block until every journaled record is sent, or ``timeout`` seconds; returns how many are left."""
        return self.sender.wait_until_sent(timeout)

    def close(self, timeout: float, progress=None) -> int:
        """Send what is pending, waiting up to ``timeout`` seconds for an unreachable store; returns
        how many records are still unsent (kept in the journal for ``--resume``)."""
        return self.sender.close(timeout, progress)

    def _reachable(self) -> bool:
        if urlparse(self.uri).scheme not in ("http", "https"):
            return True  # a database store: an error is about the record (or a lock), not an outage
        try:
            with urllib.request.urlopen(self.uri.rstrip("/") + "/health", timeout=5) as response:
                return response.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def _run_id(self, trial_name: str | None) -> str:
        if trial_name is None:
            return self.parent_run_id
        if trial_name not in self._child:
            found = self._children(trial_name)
            if not found:
                raise KeyError(f"no MLflow run for trial {trial_name!r}")
            self._child[trial_name] = found[0].info.run_id
        return self._child[trial_name]

    def _send(self, record: dict) -> None:
        """Apply one record to MLflow. Safe to repeat: a retried or replayed record changes nothing."""
        op, name = record["op"], record.get("trial")
        if op == "child":
            if name not in self._child and not self._children(name):
                run = self.client.create_run(
                    self.experiment_id, run_name=name,
                    tags={PARENT_TAG: self.parent_run_id, TRIAL_TAG: name, "tune.trial_id": record["trial_id"],
                          **_version_tags(), **record["tags"]})
                self._child[name] = run.info.run_id
            run_id = self._run_id(name)
            # Params are immutable in MLflow; logging the same values again is allowed.
            self.client.log_batch(run_id, params=[Param(k, v) for k, v in record["params"].items()])
            self.client.update_run(run_id, status="RUNNING")
        elif op == "metrics":
            self.client.log_batch(self._run_id(name), metrics=[
                Metric(k, v, record["time"], record["step"]) for k, v in record["values"].items()])
        elif op == "dict":
            self.client.log_dict(self._run_id(name), record["data"], record["file"])
        elif op == "tags":
            self.client.log_batch(self._run_id(name), tags=[RunTag(k, v) for k, v in record["tags"].items()])
        elif op == "end":
            self.client.set_terminated(self._run_id(name), status=record["status"], end_time=record["time"])
        else:
            raise ValueError(f"unknown tracking record {op!r}")
