"""The sweep's Tune callbacks: progress lines for the person at the terminal, and the MLflow records of
every trial (one child run each), handed to the driver's tracker."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from ray.tune import Callback

from rllib_sparse import metrics as m
from rllib_sparse.sweep.spec import SweepSpec
from rllib_sparse.sweep.tracking import SweepTracker
from rllib_sparse.sweep.trainable import ALREADY_FINISHED_KEY, CHECKPOINT_PATH_KEY, MATRICES_KEY, REPAIRS_KEY
from rllib_sparse.sweep.trial import NonFiniteTrainingError, PlannedTrial, nonfinite_warning, runner_class

#: The tracker of each running sweep, by parent run id. The tracking callback is pickled into Tune's
#: experiment state and comes back from it on ``--resume``; it finds the driver's live tracker here.
_TRACKERS: dict[str, SweepTracker] = {}
#: MLflow tag of a failed trial's child run: the one-line reason it failed.
FAILURE_REASON_TAG = "rllib_sparse.failure_reason"
_REASON_CHARS = 500


def failure_reason(trial) -> str:
    """The one-line reason of a Tune trial's latest failure, read from the error Tune saved for it (the
    pickled exception, else the text of its error file): the message of a ``NonFiniteTrainingError``,
    ``Type: first line`` of any other error."""
    error = None
    path = trial.pickled_error_file
    if path and os.path.exists(path):
        try:
            import cloudpickle

            with open(path, "rb") as stream:
                error = cloudpickle.load(stream)
        except Exception:  # an exception class the driver cannot import: fall back to the text
            error = None
    cause = getattr(error, "cause", None)  # a RayTaskError carries the trial's own exception
    if not isinstance(cause, BaseException):
        cause = error
    if isinstance(cause, NonFiniteTrainingError):
        return _one_line(str(cause))
    if cause is not None and not hasattr(cause, "traceback_str") and _one_line(str(cause)):
        return f"{type(cause).__name__}: {_one_line(str(cause))}"
    text = ""
    if trial.error_file and os.path.exists(trial.error_file):
        with open(trial.error_file, errors="replace") as stream:
            text = stream.read()
    elif error is not None:
        text = str(error)
    # A traceback's last line is the exception (``Type: message``); the error file holds one per failure.
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("Failure # ")]
    return _one_line(lines[-1]) if lines else "no error was recorded"


def _one_line(text: str) -> str:
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= _REASON_CHARS else line[:_REASON_CHARS - 3] + "..."



class ProgressPrinter(Callback):
    """Tune callback: one line per trial event, for the person watching the terminal."""

    def __init__(self, trials: list[PlannedTrial]):
        super().__init__()
        self.trials = trials
        self.status: dict[str, str] = {}
        self.warned: set[tuple[str, str]] = set()  # (trial, metric): each non-finite metric said once
        self.started = time.time()

    def setup(self, **info):
        self.started = time.time()

    @staticmethod
    def out(line: str) -> None:
        print(line, flush=True)

    def _line(self, trial, text: str) -> None:
        done = sum(s in ("FINISHED", "FAILED") for s in self.status.values())
        name = self.trials[trial.config["index"]].point.name
        self.out(f"[{time.time() - self.started:6.0f}s {done}/{len(self.trials)}] {name:<32} {text}")

    def _status(self, trial, status: str) -> None:
        self.status[self.trials[trial.config["index"]].point.name] = status

    def on_trial_start(self, iteration, trials, trial, **info):
        self._status(trial, "RUNNING")
        self._line(trial, "started")

    def on_trial_recover(self, iteration, trials, trial, **info):
        self._line(trial, f"failed: {failure_reason(trial)}; retrying from its last checkpoint "
                          f"({trial.error_file or 'no error file'})")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        for repair in str(result.get(REPAIRS_KEY) or "").splitlines():  # damaged files the trial worked around
            self._line(trial, f"note: {repair}")
        if result.get(ALREADY_FINISHED_KEY):
            self._line(trial, "had finished before the interruption; not run again")
            return
        evaluation = result.get(m.EVALUATION_RETURN)
        self._line(trial, f"iter {int(result.get(m.ITERATION, 0)):>4}  env_steps {int(result.get(m.ENV_STEPS, 0)):>9,}"
                          f"  return {m.return_text(result)}"
                          + (f"  eval return {m.return_text(result, m.EVALUATION_RETURN)}"
                             if evaluation is not None else ""))
        # Non-finite values reach here only under ``failure.on_nonfinite: warn``: one line per metric.
        name = self.trials[trial.config["index"]].point.name
        warned = self.__dict__.setdefault("warned", set())  # a printer pickled by an older version has none
        for key, value in m.nonfinite(result).items():
            if (name, key) not in warned:
                warned.add((name, key))
                self._line(trial, f"warning: {nonfinite_warning(key, value, int(result.get(m.ITERATION, 0)))}")

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._status(trial, "FINISHED")
        self._line(trial, "finished")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._status(trial, "FAILED")
        self._line(trial, f"FAILED after its retries: {failure_reason(trial)} (error file: {trial.error_file})")


class TrackingCallback(Callback):
    """Tune callback: the MLflow records of every trial (a child run each), handed to the tracker."""

    def __init__(self, spec: SweepSpec, trials: list[PlannedTrial], parent_run_id: str):
        super().__init__()
        self.spec, self.trials, self.parent_run_id = spec, trials, parent_run_id
        self.node: dict[str, str] = {}
        self.checkpoint_path: dict[str, str] = {}

    @property
    def tracker(self) -> SweepTracker | None:
        return _TRACKERS.get(self.parent_run_id)

    def _planned(self, trial) -> PlannedTrial:
        return self.trials[trial.config["index"]]

    def on_trial_start(self, iteration, trials, trial, **info):
        planned = self._planned(trial)
        self.tracker.child_run(planned.point.name, trial.trial_id, trial_params(self.spec, planned),
                               {"tune.trial_name": str(trial)})

    def on_trial_result(self, iteration, trials, trial, result, **info):
        name = self._planned(trial).point.name
        if isinstance(result.get(CHECKPOINT_PATH_KEY), str):
            self.checkpoint_path[name] = result[CHECKPOINT_PATH_KEY]
        if result.get(ALREADY_FINISHED_KEY):
            return
        metrics = {k: v for k, v in result.items() if k in m.TRACKED or k.startswith(m.TRACKED_PREFIXES)}
        if self.node.get(name) != result.get("node_id"):
            self.node[name] = result.get("node_id")
            self.tracker.set_tags(name, {"ray.node_id": result.get("node_id")})
        step = int(metrics.get(m.ENV_STEPS, metrics.get(m.ITERATION, 0)))
        if self.tracker.log_metrics(name, metrics, step=step) and MATRICES_KEY in result:
            iteration = int(metrics.get(m.ITERATION, 0))
            self.tracker.log_dict(name, {"iteration": iteration, "env_steps": step,
                                         m.COSINES_KEY: json.loads(result[MATRICES_KEY])},
                                  m.interference_artifact(iteration))

    def on_trial_complete(self, iteration, trials, trial, **info):
        planned = self._planned(trial)
        name = planned.point.name
        path = self.checkpoint_path.get(name) or (trial.checkpoint.path if trial.checkpoint else None)
        if path is not None:
            self.tracker.set_tags(name, {"checkpoint": path})
            self.tracker.log_dict(name, {"checkpoint": path, "filesystem": _filesystem_name(trial)},
                                  "checkpoint.json")
        self.tracker.log_dict(name, planned.layers, "sparsity.json")
        self.tracker.end_trial(name, "FINISHED")

    def on_trial_error(self, iteration, trials, trial, **info):
        name = self._planned(trial).point.name
        self.tracker.set_tags(name, {FAILURE_REASON_TAG: failure_reason(trial)})
        self.tracker.end_trial(name, "FAILED")


def _filesystem_name(trial) -> str:
    return type(trial.checkpoint.filesystem).__name__ if trial.checkpoint is not None else "LocalFileSystem"


def trial_params(spec: SweepSpec, planned: PlannedTrial) -> dict[str, Any]:
    """The curated MLflow params of a trial (not RLlib's 300-key config dump)."""
    point = planned.point
    actor, critic = point.model.network("actor"), point.model.network("critic")
    params = {
        "algorithm": spec.algorithm, "env": point.env, "model": point.model.name,
        "width": actor.width, "depth": actor.depth, "sparsity": actor.sparsity,
        "critic_width": critic.width, "critic_depth": critic.depth, "critic_sparsity": critic.sparsity,
        "allocation": actor.allocation, "critic_allocation": critic.allocation, "seed": point.seed,
        "dense_params": planned.dense_params, "nonzero_params": planned.nonzero_params,
        "num_env_runners": spec.resources.num_env_runners,
        "num_envs_per_env_runner": spec.resources.num_envs_per_env_runner,
        "smoke": spec.smoke,
    }
    params.update({f"training.{k}": v for k, v in point.training.items()})
    params.update(runner_class(spec.algorithm).params(spec, point))
    return params
