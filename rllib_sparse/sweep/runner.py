"""Run a sweep with Ray Tune, track it in MLflow, print progress a person can read.

Exit codes: 0 every trial finished; 1 some trial failed after its retries (named in the summary);
2 bad input (file, flags, unreachable cluster or tracking server), detected before any trial starts.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ray.tune import Callback

from rllib_sparse.sweep.plan import PlannedTrial, plan, trial_config
from rllib_sparse.sweep.spec import SweepSpec, load_sweep
from rllib_sparse.sweep.trainable import MATRICES_KEY
from rllib_sparse.sweep.tracking import (
    INTERFERENCE_DIR,
    SweepTracker,
    check_tracking_uri,
    default_tracking_uri,
    ui_command,
)

RUNS_DIR = "runs"  # Tune's storage, under the working directory: runs/<study>/<timestamp>/


class SweepInputError(ValueError):
    """Bad input found before any trial started (exit code 2)."""


@dataclass
class SweepOptions:
    file: Path
    overrides: list[str] = field(default_factory=list)
    address: str | None = None
    tracking_uri: str | None = None
    resume: bool = False
    smoke: bool = False
    tracking: bool = True
    num_cpus: int | None = None
    runs_dir: Path = Path(RUNS_DIR)
    extra_callbacks: list = field(default_factory=list)  # more Tune callbacks (e.g. another tracker)


def prepare(options: SweepOptions) -> tuple[SweepSpec, list[PlannedTrial], str | None, Path | None]:
    """Everything that can fail on input, before Ray starts and before anything is written: file,
    grid, env, the sweep to resume, address, tracking store."""
    overrides = list(options.overrides) + (["smoke=true"] if options.smoke else [])
    try:
        spec = load_sweep(options.file, overrides)
        trials = plan(spec, source=str(options.file))
    except ValueError as error:
        raise SweepInputError(str(error)) from None
    meta_path = None
    if options.resume:
        meta_path = _latest_sweep(options.runs_dir.resolve(), spec.name)
        if meta_path is None:
            raise SweepInputError(f"--resume: no earlier sweep of study {spec.name!r} under "
                                  f"{options.runs_dir.resolve() / spec.name}; allowed: --resume after a "
                                  "sweep of the same file was started")
    if options.address:
        _check_address(options.address)
    uri = None
    if options.tracking:
        uri = options.tracking_uri or spec.tracking.tracking_uri or default_tracking_uri()
        try:
            check_tracking_uri(uri)
        except ValueError as error:
            raise SweepInputError(str(error)) from None
    return spec, trials, uri, meta_path


def _check_address(address: str) -> None:
    if address == "auto":
        return
    parsed = urlparse(address if "://" in address else f"ray://{address}")
    host, port = parsed.hostname, parsed.port
    if host is None or port is None:
        raise SweepInputError(f"--address={address!r} is invalid; allowed: HOST:PORT of a Ray head (GCS), "
                              "ray://HOST:PORT, or auto")
    if not port_open(host, port):
        raise SweepInputError(f"--address={address!r} is unreachable (nothing answers on {host}:{port}); "
                              "allowed: the address of a running Ray head")


def port_open(host: str, port: int, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class ProgressCallback(Callback):
    """Tune callback: one line per trial event, and MLflow logging of every trial.

    Tune pickles it with the experiment state and brings it back on ``--resume``; the MLflow client is
    therefore made lazily from (tracking URI, experiment, parent run id) in whichever process runs it.
    """

    def __init__(self, spec: SweepSpec, trials: list[PlannedTrial], tracking_uri: str | None,
                 parent_run_id: str | None):
        super().__init__()
        self.spec, self.trials = spec, trials
        self.tracking_uri, self.parent_run_id = tracking_uri, parent_run_id
        self.status: dict[str, str] = {}
        self.node: dict[str, str] = {}
        self.started = time.time()
        self._tracker: SweepTracker | None = None

    def __getstate__(self):
        return dict(self.__dict__, _tracker=None)

    def setup(self, **info):
        self.started = time.time()

    @property
    def tracker(self) -> SweepTracker | None:
        if self._tracker is None and self.tracking_uri:
            self._tracker = SweepTracker(self.tracking_uri, self.spec.experiment_name)
            self._tracker.start_parent(self.spec.name, run_id=self.parent_run_id)
        return self._tracker

    @staticmethod
    def out(line: str) -> None:
        print(line, flush=True)

    def _planned(self, trial) -> PlannedTrial:
        return self.trials[trial.config["index"]]

    def _line(self, planned: PlannedTrial, text: str) -> None:
        done = sum(s in ("FINISHED", "FAILED") for s in self.status.values())
        self.out(f"[{time.time() - self.started:6.0f}s {done}/{len(self.trials)}] {planned.point.name:<32} {text}")

    def on_trial_start(self, iteration, trials, trial, **info):
        planned = self._planned(trial)
        self.status[planned.point.name] = "RUNNING"
        if self.tracker is not None:
            self.tracker.child_run(planned.point.name, trial.trial_id, trial_params(self.spec, planned),
                                   {"tune.trial_name": str(trial)})
        self._line(planned, "started")

    def on_trial_recover(self, iteration, trials, trial, **info):
        planned = self._planned(trial)
        self._line(planned, f"failed; retrying from its last checkpoint ({trial.error_file or 'no error file'})")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        planned = self._planned(trial)
        name = planned.point.name
        metrics = {k: v for k, v in result.items() if k in _TRACKED or k.startswith(("learner/", "mask/", "diag/"))}
        if self.tracker is not None:
            if self.node.get(name) != result.get("node_id"):
                self.node[name] = result.get("node_id")
                self.tracker.set_tags(name, {"ray.node_id": result.get("node_id")})
            step = int(metrics.get("env_steps", metrics.get("iteration", 0)))
            if self.tracker.log_metrics(name, metrics, step=step) and MATRICES_KEY in result:
                iteration = int(metrics.get("iteration", 0))
                self.tracker.log_dict(name, {"iteration": iteration, "env_steps": step,
                                             "cosines": json.loads(result[MATRICES_KEY])},
                                      f"{INTERFERENCE_DIR}/iter_{iteration:06d}.json")
        ret = metrics.get("episode_return_mean", float("nan"))
        self._line(planned, f"iter {int(metrics.get('iteration', 0)):>4}  env_steps {int(metrics.get('env_steps', 0)):>9,}"
                            f"  return {ret:9.2f}")

    def on_trial_complete(self, iteration, trials, trial, **info):
        planned = self._planned(trial)
        name = planned.point.name
        self.status[name] = "FINISHED"
        if self.tracker is not None:
            if trial.checkpoint is not None:
                self.tracker.set_tags(name, {"checkpoint": trial.checkpoint.path})
                self.tracker.log_dict(name, {"checkpoint": trial.checkpoint.path,
                                             "filesystem": type(trial.checkpoint.filesystem).__name__},
                                      "checkpoint.json")
            self.tracker.log_dict(name, planned.layers, "sparsity.json")
            self.tracker.end_trial(name, "FINISHED")
        self._line(planned, "finished")

    def on_trial_error(self, iteration, trials, trial, **info):
        planned = self._planned(trial)
        name = planned.point.name
        self.status[name] = "FAILED"
        if self.tracker is not None:
            self.tracker.end_trial(name, "FAILED")
        self._line(planned, f"FAILED after its retries; see {trial.error_file}")


_TRACKED = ("episode_return_mean", "episode_return_max", "episode_len_mean", "training_episode_return_mean",
            "env_steps", "iteration",
            "time_total_s", "time_this_iter_s", "env_steps_per_s")


def trial_params(spec: SweepSpec, planned: PlannedTrial) -> dict[str, Any]:
    """The curated MLflow params of a trial (not RLlib's 300-key config dump)."""
    point = planned.point
    actor, critic = point.model.network("actor"), point.model.network("critic")
    params = {
        "algorithm": spec.algorithm, "env": point.env, "model": point.model.model,
        "width": actor.width, "depth": actor.depth, "sparsity": actor.sparsity,
        "critic_width": critic.width, "critic_depth": critic.depth, "critic_sparsity": critic.sparsity,
        "allocation": actor.allocation, "critic_allocation": critic.allocation, "seed": point.seed,
        "dense_params": planned.dense_params, "nonzero_params": planned.nonzero_params,
        "num_env_runners": spec.resources.num_env_runners,
        "num_envs_per_env_runner": spec.resources.num_envs_per_env_runner,
        "smoke": spec.smoke,
    }
    params.update({f"training.{k}": v for k, v in point.training.items()})
    return params


def _latest_sweep(runs: Path, name: str) -> Path | None:
    metas = sorted((runs / name).glob("*.json"))
    return metas[-1] if metas else None


def run_sweep(options: SweepOptions, out: Callable[[str], None] = print) -> int:
    """Run (or ``resume``) the sweep of ``options.file``; returns the exit code."""
    spec, trials, uri, meta_path = prepare(options)
    runs = options.runs_dir.resolve() / spec.name
    meta = json.loads(meta_path.read_text()) if meta_path else {
        "stamp": time.strftime("%Y%m%d-%H%M%S"), "file": str(options.file.resolve()), "tracking_uri": uri}
    uri = meta.get("tracking_uri") if options.resume and options.tracking_uri is None else uri
    experiment_dir = runs / meta["stamp"]

    # Tune's console output (config boxes, status tables) is replaced by ProgressCallback's lines.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    import ray
    from ray import tune

    tracker = SweepTracker(uri, spec.experiment_name) if uri else None
    if tracker is not None:
        meta["parent_run_id"] = tracker.start_parent(
            f"{spec.name}-{meta['stamp']}", run_id=meta.get("parent_run_id"),
            params={"algorithm": spec.algorithm, "env": spec.env, "trials": len(trials), "smoke": spec.smoke},
            sweep_file=options.file)
    runs.mkdir(parents=True, exist_ok=True)
    (runs / f"{meta['stamp']}.json").write_text(json.dumps(meta, indent=2))

    started_ray = not ray.is_initialized()
    if started_ray:
        if options.address:
            # Ray 2.60 clusters use token auth by default; a client must say so to present its token.
            if "RAY_AUTH_MODE" not in os.environ and (Path.home() / ".ray" / "auth_token").exists():
                os.environ["RAY_AUTH_MODE"] = "token"
            ray.init(address=options.address, log_to_driver=False)
        else:
            ray.init(include_dashboard=False, num_cpus=options.num_cpus, log_to_driver=False)
    status = "FAILED"
    failed: list[str] = []
    unfinished: list[str] = []
    grid = None
    try:
        first = trial_config(spec, trials[0].point)
        trainable = tune.with_resources(_trainable(), first.algo_class.default_resource_request(first))
        out(f"sweep {spec.name!r}: {len(trials)} trial(s) of {spec.algorithm} on {spec.env}"
            f"{' (smoke)' if spec.smoke else ''}; Tune folder {experiment_dir}")
        if options.resume and tune.Tuner.can_restore(str(experiment_dir)):
            # The restored experiment state brings back its own (pickled) callback and config.
            tuner = tune.Tuner.restore(str(experiment_dir), trainable=trainable, resume_unfinished=True,
                                       resume_errored=True, param_space=_param_space(spec, trials))
        else:
            tuner = tune.Tuner(
                trainable,
                param_space=_param_space(spec, trials),
                tune_config=tune.TuneConfig(max_concurrent_trials=spec.resources.max_concurrent_trials,
                                            trial_name_creator=lambda t: trials[t.config["index"]].point.name,
                                            trial_dirname_creator=lambda t: trials[t.config["index"]].point.name),
                run_config=tune.RunConfig(
                    name=meta["stamp"], storage_path=str(runs), verbose=0,
                    callbacks=[ProgressCallback(spec, trials, uri, meta.get("parent_run_id")),
                               *options.extra_callbacks],
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=spec.checkpoint.keep),
                    failure_config=tune.FailureConfig(max_failures=spec.failure.max_retries)),
            )
        grid = tuner.fit()
        failed = [trials[r.config["index"]].point.name for r in grid if r.error is not None]
        # Tune returns normally on Ctrl-C too, with the running trials stopped where they were.
        unfinished = [trials[r.config["index"]].point.name for r in grid
                      if r.error is None and not (r.metrics or {}).get("done_training")]
        status = "KILLED" if unfinished else "FAILED" if failed else "FINISHED"
    except KeyboardInterrupt:
        status, unfinished = "KILLED", []
        raise
    finally:
        if tracker is not None:
            if unfinished:
                tracker.load_children()
            for name in unfinished:
                tracker.end_trial(name, "KILLED")  # reopened by --resume; never left RUNNING
            tracker.end_parent(status)
        if started_ray:
            ray.shutdown()
    summary(spec, trials, grid, failed, uri, experiment_dir, out)
    if unfinished:
        out(f"interrupted: {len(unfinished)} trial(s) unfinished; continue with: "
            f"rllib-sparse sweep {options.file} --resume")
    return 1 if failed or unfinished else 0


def _trainable():
    from rllib_sparse.sweep.trainable import run_trial

    return run_trial


def _param_space(spec: SweepSpec, trials: list[PlannedTrial]) -> dict:
    from ray import tune

    return {"spec": spec.model_dump(mode="json"), "index": tune.grid_search(list(range(len(trials))))}


def summary(spec, trials, grid, failed, uri, experiment_dir, out) -> None:
    """Final return per width x sparsity (mean over seeds), the failures, and where to look."""
    final = {r.config["index"]: (r.metrics or {}).get("episode_return_mean") for r in grid} if grid else {}
    cells: dict[tuple, list[float]] = {}
    for index, t in enumerate(trials):
        actor = t.point.model.network("actor")
        ret = final.get(index)
        cells.setdefault((actor.width, actor.sparsity), [])
        if ret is not None and ret == ret:
            cells[(actor.width, actor.sparsity)].append(ret)
    widths = sorted({w for w, _ in cells})
    sparsities = sorted({s for _, s in cells})
    out("")
    out(f"final episode return (mean over seeds) of {spec.name!r}:")
    out("width \\ sparsity " + "".join(f"{s:>10g}" for s in sparsities))
    for w in widths:
        row = [cells.get((w, s)) for s in sparsities]
        out(f"{w:>16} " + "".join(f"{statistics.fmean(v):>10.1f}" if v else f"{'-':>10}" for v in row))
    if failed:
        out(f"FAILED trials ({len(failed)}): {', '.join(failed)}")
    out(f"Tune folder: {experiment_dir}")
    if uri:
        out(f"MLflow: {ui_command(uri)}   (experiment {spec.experiment_name!r})")
    sys.stdout.flush()
