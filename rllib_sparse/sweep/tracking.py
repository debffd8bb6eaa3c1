"""MLflow tracking of a sweep: one experiment per study, a parent run per sweep, a child run per trial.

Everything is logged from the sweep driver (a Tune ``Callback``), never from the trials: the experiment
and parent run exist before any trial starts (no creation race), a dead trial's run is still ended
FAILED, and each trial iteration costs exactly one ``log_batch`` call. Child runs are found again by
their ``rllib_sparse.trial`` tag, so a resumed sweep or a retried trial continues its own run.
"""

from __future__ import annotations

import functools
import math
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

import rllib_sparse

TRIAL_TAG = "rllib_sparse.trial"
SWEEP_TAG = "rllib_sparse.sweep"
PARENT_TAG = "mlflow.parentRunId"
#: Child-run artifact folder of the gradient-cosine matrices (``iter_<iteration>.json``).
INTERFERENCE_DIR = "interference"


def default_tracking_uri(root: Path | None = None) -> str:
    """The embedded default: a SQLite store under ``./mlruns/`` (MLflow 3 refuses the file store)."""
    folder = (root or Path.cwd()) / "mlruns"
    return f"sqlite:///{(folder / 'mlflow.db').resolve()}"


def check_tracking_uri(uri: str, timeout: float = 5.0) -> None:
    """Raise a one-line ValueError unless the tracking store can be reached/created."""
    scheme = urlparse(uri).scheme
    if scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as response:
                if response.status != 200:
                    raise OSError(f"HTTP {response.status}")
        except (OSError, urllib.error.URLError) as error:
            reason = getattr(error, "reason", error)
            raise ValueError(f"tracking URI {uri!r} is unreachable ({reason}); allowed: a running MLflow "
                             "server (http://HOST:PORT) or a sqlite:/// path") from None
    elif scheme == "sqlite":
        Path(urlparse(uri).path).parent.mkdir(parents=True, exist_ok=True)
    elif scheme in ("file", ""):
        raise ValueError(f"tracking URI {uri!r}: the file store is disabled in MLflow 3; "
                         "allowed: sqlite:///ABSOLUTE/PATH.db or http://HOST:PORT")


def ui_command(uri: str) -> str:
    if urlparse(uri).scheme == "sqlite":
        return f"mlflow ui --backend-store-uri {uri}"
    return f"open {uri}"


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


class SweepTracker:
    """The MLflow side of one sweep (driver only)."""

    def __init__(self, uri: str, experiment: str):
        self.uri = uri
        self.client = MlflowClient(uri)
        self.experiment_id = self._experiment(experiment)
        self.parent_run_id: str | None = None
        self._child: dict[str, str] = {}  # trial name -> run id
        self._last_step: dict[str, float] = {}  # run id -> highest step logged

    def _experiment(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        location = None
        if urlparse(self.uri).scheme == "sqlite":
            location = (Path(urlparse(self.uri).path).parent / "artifacts").as_uri()
        return self.client.create_experiment(name, artifact_location=location)

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
        if params:
            self.client.log_batch(self.parent_run_id, params=[Param(k, str(v)) for k, v in params.items()])
        if sweep_file is not None:
            self.client.log_artifact(self.parent_run_id, str(sweep_file))
        return self.parent_run_id

    def load_children(self) -> None:
        """Learn the parent's existing child runs (made by another tracker, or before a resume)."""
        for run in self._children():
            self._child[run.data.tags[TRIAL_TAG]] = run.info.run_id
            self._last_step[run.info.run_id] = self._max_step(run)

    def _children(self):
        return self.client.search_runs([self.experiment_id],
                                       filter_string=f"tags.`{PARENT_TAG}` = '{self.parent_run_id}'",
                                       max_results=10_000)

    def _max_step(self, run) -> float:
        histories = [self.client.get_metric_history(run.info.run_id, key) for key in run.data.metrics]
        return max((m.step for h in histories for m in h), default=-math.inf)

    def child_run(self, trial_name: str, trial_id: str, params: dict[str, Any], tags: dict[str, str]) -> str:
        """The trial's run: reopened if it exists (retry, resume), else created with its params."""
        run_id = self._child.get(trial_name)
        if run_id is None:
            run = self.client.create_run(
                self.experiment_id, run_name=trial_name,
                tags={PARENT_TAG: self.parent_run_id, TRIAL_TAG: trial_name, "tune.trial_id": trial_id,
                      **_version_tags(), **tags})
            run_id = run.info.run_id
            self._child[trial_name] = run_id
            self._last_step[run_id] = -math.inf
            self.client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])
        else:
            self.client.update_run(run_id, status="RUNNING")
        return run_id

    def log_metrics(self, trial_name: str, metrics: dict[str, float], step: int) -> bool:
        """One batched call per iteration. Steps at or below the last logged one (a trial re-running
        iterations after a restore) are skipped, so every run keeps one continuous history."""
        run_id = self._child[trial_name]
        if step <= self._last_step.get(run_id, -math.inf):
            return False
        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, int(step)) for k, v in metrics.items()
                 if isinstance(v, (int, float)) and math.isfinite(float(v))]
        if batch:
            self.client.log_batch(run_id, metrics=batch)
        self._last_step[run_id] = step
        return True

    def log_dict(self, trial_name: str, data: dict, artifact_file: str) -> None:
        self.client.log_dict(self._child[trial_name], data, artifact_file)

    def set_tags(self, trial_name: str, tags: dict[str, str]) -> None:
        self.client.log_batch(self._child[trial_name], tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def end_trial(self, trial_name: str, status: str) -> None:
        if trial_name in self._child:
            self.client.set_terminated(self._child[trial_name], status=status)

    def end_parent(self, status: str) -> None:
        if self.parent_run_id is not None:
            self.client.set_terminated(self.parent_run_id, status=status)
