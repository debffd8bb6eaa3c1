"""Run a sweep with Ray Tune, track it in MLflow, print progress a person can read.

Exit codes: 0 every trial finished; 1 some trial failed after its retries (named in the summary);
2 bad input (file, flags, unreachable cluster or tracking server), detected before any trial starts.
"""

from __future__ import annotations

import json
import logging
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

from rllib_sparse import metrics as m
from rllib_sparse.sweep.logs import LibraryLogs
from rllib_sparse.sweep.plan import PlannedTrial, format_bytes, plan, too_big
from rllib_sparse.sweep.spec import SweepSpec, load_sweep
from rllib_sparse.sweep.tracking import (
    INTERFERENCE_DIR,
    SweepTracker,
    check_tracking_uri,
    default_tracking_uri,
    runs_view,
    ui_command,
)
from rllib_sparse.sweep.trainable import ALREADY_FINISHED_KEY, CHECKPOINT_PATH_KEY, MATRICES_KEY
from rllib_sparse.sweep.trial import runner_class

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
    #: Tune's storage: None for ``runs_dir`` (this machine), else a URI every node reaches (``s3://...``).
    #: The sweep's own record, log and tracking journal stay in ``runs_dir`` on the driver's machine.
    storage: str | None = None
    verbose: bool = False  # Ray's, Tune's and MLflow's log lines on the terminal too (they always go to the log file)
    extra_callbacks: list = field(default_factory=list)  # more Tune callbacks (e.g. another tracker)
    #: Seconds the end of a sweep waits for an unreachable tracking store before leaving the unsent
    #: records in the journal for ``--resume``.
    tracking_flush_timeout: float = float(os.environ.get("RLLIB_SPARSE_TRACKING_FLUSH_TIMEOUT", "300"))


@dataclass
class Prepared:
    """A sweep whose input has been checked: nothing has been started or written yet."""

    spec: SweepSpec
    trials: list[PlannedTrial]
    uri: str | None
    study_dir: Path  # runs/<study>/
    meta_path: Path | None  # the record of the sweep to resume
    meta: dict | None
    storage: str | None = None  # Tune's storage when not study_dir (checked; the resumed sweep's own)


def prepare(options: SweepOptions) -> Prepared:
    """Everything that can fail on input, before Ray starts and before anything is written: file, the
    sweep to resume (and that it is the same study), address, storage, tracking store, then the grid and
    its envs (planning: the slowest check, so a mistyped flag is refused without waiting for it)."""
    overrides = list(options.overrides) + (["smoke=true"] if options.smoke else [])
    try:
        spec = load_sweep(options.file, overrides)
    except ValueError as error:
        raise SweepInputError(str(error)) from None
    if options.num_cpus is not None and options.num_cpus < 1:
        raise SweepInputError(f"--num-cpus={options.num_cpus} is invalid; allowed: an integer >= 1")
    study_dir = options.runs_dir.resolve() / spec.name
    for folder in (options.runs_dir.resolve(), study_dir):
        if folder.exists() and not folder.is_dir():
            raise SweepInputError(f"{folder} is a file, but sweeps keep their Tune folders there; allowed: "
                                  "move the file away, or run the sweep from another folder")
    meta_path = meta = None
    if options.resume:
        meta_path = _latest_sweep(study_dir)
        if meta_path is None:
            raise SweepInputError(f"--resume: no earlier sweep of study {spec.name!r} under {study_dir}; "
                                  "allowed: --resume after a sweep of the same file was started")
        meta = _read_meta(meta_path)
        _check_same_study(meta, spec, meta_path)
    if options.address:
        _check_address(options.address)
    storage = check_storage(options.storage) if options.storage else None
    if meta is not None and meta.get("storage") != storage and (meta.get("storage") or storage):
        if storage is None:
            storage = check_storage(meta["storage"])  # the interrupted sweep's storage, recorded
        else:
            raise SweepInputError(f"--resume: the interrupted sweep kept its trials in {meta.get('storage') or 'runs/'}"
                                  f", not --storage={options.storage!r}; allowed: the same --storage as then")
    uri = None
    if options.tracking:
        uri = options.tracking_uri or (meta or {}).get("tracking_uri") or spec.tracking.tracking_uri \
            or default_tracking_uri()
        try:
            check_tracking_uri(uri)
        except ValueError as error:
            hint = (f" (the tracking URI the interrupted sweep used, from {meta_path}; pass --tracking-uri to "
                    "send it elsewhere)") if meta and not options.tracking_uri else ""
            raise SweepInputError(f"{error}{hint}") from None
    try:  # last: planning builds every trial's RLlib config and env spaces (seconds), the checks above do not
        trials = plan(spec, source=str(options.file))
    except ValueError as error:
        raise SweepInputError(str(error)) from None
    return Prepared(spec, trials, uri, study_dir, meta_path, meta, storage)


def check_storage(storage: str) -> str:
    """``--storage`` as Tune will use it (a folder made absolute), or a one-line refusal of one that Tune
    could not reach, before anything starts."""
    allowed = ("allowed: a folder (an NFS mount on a cluster), or a URI every node can write: s3://BUCKET/PATH "
               "(credentials and AWS_ENDPOINT_URL in the environment), gs://BUCKET/PATH")
    if "://" not in storage:
        folder = Path(storage).expanduser().resolve()
        if folder.exists() and not folder.is_dir():
            raise SweepInputError(f"--storage={storage!r} is a file; {allowed}")
        return str(folder)
    import pyarrow
    import pyarrow.fs

    try:
        filesystem, path = pyarrow.fs.FileSystem.from_uri(storage)
        bucket = path.split("/", 1)[0]
        missing = filesystem.get_file_info(bucket).type == pyarrow.fs.FileType.NotFound
    except (pyarrow.ArrowException, OSError, ValueError) as error:
        first = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
        raise SweepInputError(f"--storage={storage!r} cannot be reached: {first}; {allowed}") from None
    if missing:
        raise SweepInputError(f"--storage={storage!r}: there is no bucket {bucket!r}; {allowed}")
    return storage.rstrip("/")


def _read_meta(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text())
        if not isinstance(meta, dict) or not isinstance(meta.get("stamp"), str):
            raise ValueError("no 'stamp' field")
        return meta
    except (OSError, ValueError) as error:
        raise SweepInputError(f"--resume: {path} is not a readable sweep record ({error}); allowed: the "
                              "record a sweep wrote (move this one away to resume an earlier sweep)") from None


def _check_same_study(meta: dict, spec: SweepSpec, path: Path) -> None:
    """``--resume`` continues the very study that was interrupted, or refuses and says what differs."""
    before = meta.get("fingerprint")
    if before is None:
        raise SweepInputError(f"--resume: {path} was written by an older rllib-sparse and does not record its "
                              "study, so resuming it could mix two studies; allowed: a new sweep (without --resume)")
    now = spec.fingerprint()
    differences = _differences(before, now)
    if differences:
        shown = "; ".join(f"{key}: {old} -> {new}" for key, old, new in differences[:3])
        more = f" (and {len(differences) - 3} more)" if len(differences) > 3 else ""
        raise SweepInputError(f"--resume: this is not the study that was interrupted ({meta['stamp']}): {shown}"
                              f"{more}; allowed: the same file, --set and --smoke as then, or a new sweep "
                              "without --resume")


def _differences(old, new, path: str = "") -> list[tuple[str, str, str]]:
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new), key=str):
            found += _differences(old.get(key), new.get(key), f"{path}.{key}" if path else str(key))
        return found
    return [] if old == new else [(path, json.dumps(old), json.dumps(new))]


def _check_address(address: str) -> None:
    if address == "auto":
        return
    parsed = urlparse(address if "://" in address else f"ray://{address}")
    try:
        host, port = parsed.hostname, parsed.port
    except ValueError:  # "Port out of range 0-65535"
        host = port = None
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


def check_resources(spec: SweepSpec, trials: list[PlannedTrial], bundles: list[dict[str, float]],
                    nodes: list[dict[str, float]]) -> None:
    """Refuse a sweep whose trials no node of the cluster can host (Tune would wait for them forever).

    ``bundles`` are one trial's resource bundles (its placement group), ``nodes`` the alive nodes'
    resources. A trial's bundles may spread over nodes, but each bundle must fit on one.
    """
    settings = (f"resources.cpus_per_trial={spec.resources.cpus_per_trial:g}, "
                f"gpus_per_trial={spec.resources.gpus_per_trial:g}, "
                f"num_env_runners={spec.resources.num_env_runners}")
    for key in ("CPU", "GPU"):
        need = sum(b.get(key, 0) for b in bundles)
        largest_bundle = max((b.get(key, 0) for b in bundles), default=0)
        have = sum(n.get(key, 0) for n in nodes)
        largest_node = max((n.get(key, 0) for n in nodes), default=0)
        if need > have or largest_bundle > largest_node:
            raise SweepInputError(f"resources: each trial needs {need:g} {key} ({settings}), but the cluster has "
                                  f"{have:g} {key} (at most {largest_node:g} on one node); allowed: settings "
                                  "the cluster can host (or --num-cpus / more nodes)")
    memory = max((n.get("memory", 0) for n in nodes), default=0)
    for trial in trials:
        if trial.memory_bytes > memory:
            raise SweepInputError(f"resources: {too_big(trial, f'the largest node has {format_bytes(memory)}')}")


#: The tracker of each running sweep, by parent run id. The tracking callback is pickled into Tune's
#: experiment state and comes back from it on ``--resume``; it finds the driver's live tracker here.
_TRACKERS: dict[str, SweepTracker] = {}


class ProgressPrinter(Callback):
    """Tune callback: one line per trial event, for the person watching the terminal."""

    def __init__(self, trials: list[PlannedTrial]):
        super().__init__()
        self.trials = trials
        self.status: dict[str, str] = {}
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
        self._line(trial, f"failed; retrying from its last checkpoint ({trial.error_file or 'no error file'})")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if result.get(ALREADY_FINISHED_KEY):
            self._line(trial, "had finished before the interruption; not run again")
            return
        evaluation = result.get(m.EVALUATION_RETURN)
        self._line(trial, f"iter {int(result.get(m.ITERATION, 0)):>4}  env_steps {int(result.get(m.ENV_STEPS, 0)):>9,}"
                          f"  return {m.format_return(result.get(m.EPISODE_RETURN))}"
                          + (f"  eval return {m.format_return(evaluation)}" if evaluation is not None else ""))

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._status(trial, "FINISHED")
        self._line(trial, "finished")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._status(trial, "FAILED")
        self._line(trial, f"FAILED after its retries; see {trial.error_file}")


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
                                         "cosines": json.loads(result[MATRICES_KEY])},
                                  f"{INTERFERENCE_DIR}/iter_{iteration:06d}.json")

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
        self.tracker.end_trial(self._planned(trial).point.name, "FAILED")


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


def _latest_sweep(study_dir: Path) -> Path | None:
    metas = sorted(study_dir.glob("*.json"))
    return metas[-1] if metas else None


def run_sweep(options: SweepOptions, out: Callable[[str], None] = print) -> int:
    """Run (or ``resume``) the sweep of ``options.file``; returns the exit code."""
    prepared = prepare(options)
    with LibraryLogs(echo=options.verbose) as logs:
        try:
            return _run(options, prepared, logs, out)
        finally:
            logs.discard()  # only if the sweep never got its folder (bad input found after Ray started)


def _run(options: SweepOptions, prepared: Prepared, logs: LibraryLogs, out: Callable[[str], None]) -> int:
    spec, trials, uri, runs = prepared.spec, prepared.trials, prepared.uri, prepared.study_dir
    meta = dict(prepared.meta) if prepared.meta else {
        "stamp": time.strftime("%Y%m%d-%H%M%S"), "file": str(options.file.resolve()), "tracking_uri": uri,
        "fingerprint": spec.fingerprint()}
    meta["tracking_uri"] = uri
    if prepared.storage:
        meta["storage"] = prepared.storage
    storage_path = f"{prepared.storage}/{spec.name}" if prepared.storage else str(runs)
    experiment_dir = f"{storage_path}/{meta['stamp']}"

    # Tune's console output (config boxes, status tables) is replaced by ProgressPrinter's lines.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    import ray
    from ray import tune

    started_ray = not ray.is_initialized()
    if started_ray:
        _start_ray(options)
        logs.recapture()  # ray.init put its own terminal handler back on the "ray" logger
    status, failed, unfinished, grid, tracker = "FAILED", [], [], None, None
    try:
        bundles = runner_class(spec.algorithm).resources(spec, trials[0].point)
        nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
        check_resources(spec, trials, bundles, nodes)

        # The input is good and the cluster can host it: from here on the sweep writes.
        runs.mkdir(parents=True, exist_ok=True)
        logs.move_to(runs / f"{meta['stamp']}.log")
        if uri:
            tracker = _start_tracking(options, prepared, meta, uri, out)
        meta["status"] = "RUNNING"
        _write_meta(runs / f"{meta['stamp']}.json", meta)

        trainable = tune.with_resources(_trainable(), tune.PlacementGroupFactory(bundles, strategy="PACK"))
        out(f"sweep {spec.name!r}: {len(trials)} trial(s) of {spec.algorithm} on {spec.env}"
            f"{' (smoke)' if spec.smoke else ''}; Tune folder {experiment_dir}")
        if options.resume and tune.Tuner.can_restore(experiment_dir):
            # The restored experiment state brings back its own (pickled) callback and config.
            tuner = tune.Tuner.restore(experiment_dir, trainable=trainable, resume_unfinished=True,
                                       resume_errored=True, param_space=_param_space(spec, trials))
        else:
            tuner = tune.Tuner(
                trainable,
                param_space=_param_space(spec, trials),
                tune_config=tune.TuneConfig(max_concurrent_trials=spec.resources.max_concurrent_trials,
                                            trial_name_creator=lambda t: trials[t.config["index"]].point.name,
                                            trial_dirname_creator=lambda t: trials[t.config["index"]].point.name),
                run_config=tune.RunConfig(
                    name=meta["stamp"], storage_path=storage_path, verbose=0,
                    callbacks=[ProgressPrinter(trials),
                               *([TrackingCallback(spec, trials, meta["parent_run_id"])] if uri else []),
                               *options.extra_callbacks],
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=spec.checkpoint.keep),
                    failure_config=tune.FailureConfig(max_failures=spec.failure.max_retries)),
            )
        grid = tuner.fit()
        failed = [_trial_index(r, trials)[1] for r in grid if r.error is not None]
        # Tune returns normally on Ctrl-C too, with the running trials stopped where they were.
        unfinished = [_trial_index(r, trials)[1] for r in grid
                      if r.error is None and not (r.metrics or {}).get(m.DONE)]
        status = "KILLED" if unfinished else "FAILED" if failed else "FINISHED"
    except KeyboardInterrupt:
        status, unfinished = "KILLED", []
        raise
    finally:
        unsent = 0
        if tracker is not None:
            for name in unfinished:
                tracker.end_trial(name, "KILLED")  # reopened by --resume; never left RUNNING
            tracker.end_parent(status)
            unsent = tracker.close(options.tracking_flush_timeout, progress=out)
            _TRACKERS.pop(tracker.parent_run_id, None)
        if "status" in meta:
            meta["status"] = status
            _write_meta(runs / f"{meta['stamp']}.json", meta)
        if started_ray:
            ray.shutdown()
    summary(spec, trials, grid, failed, uri, experiment_dir, out,
            experiment_id=tracker.experiment_id if tracker is not None else None)
    out(f"Ray, Tune and MLflow logs: {logs.path}")
    if tracker is not None and tracker.dropped:
        out(f"MLflow refused {len(tracker.dropped)} record(s) (see the log): {tracker.dropped[0]}")
    if unsent:
        out(f"MLflow at {uri} is unreachable: {unsent} record(s) are kept in {tracker.journal}; "
            f"send them with: rllib-sparse sweep {options.file} --resume")
    if unfinished:
        out(f"interrupted: {len(unfinished)} trial(s) unfinished; continue with: "
            f"rllib-sparse sweep {options.file} --resume")
    return 1 if failed or unfinished or unsent else 0


def _start_ray(options: SweepOptions) -> None:
    import ray

    try:
        if options.address:
            # Ray 2.60 clusters use token auth by default; a client must say so to present its token.
            if "RAY_AUTH_MODE" not in os.environ and (Path.home() / ".ray" / "auth_token").exists():
                os.environ["RAY_AUTH_MODE"] = "token"
            ray.init(address=options.address, log_to_driver=False, logging_level=logging.WARNING)
        else:
            ray.init(include_dashboard=False, num_cpus=options.num_cpus, log_to_driver=False,
                     logging_level=logging.WARNING)
    except Exception as error:  # ConnectionError, auth errors, bad arguments: one line for the user
        first = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
        where = f" at --address={options.address!r}" if options.address else ""
        raise SweepInputError(f"Ray could not be started{where}: {first}") from None


def _start_tracking(options: SweepOptions, prepared: Prepared, meta: dict, uri: str,
                    out: Callable[[str], None]) -> SweepTracker:
    spec, runs = prepared.spec, prepared.study_dir
    tracker = SweepTracker(uri, spec.experiment_name)
    if not options.resume:
        _close_interrupted_sweeps(tracker, runs, spec, uri, options.file, out)
    meta["parent_run_id"] = tracker.start_parent(
        f"{spec.name}-{meta['stamp']}", run_id=meta.get("parent_run_id"),
        params={"algorithm": spec.algorithm, "env": spec.env, "trials": len(prepared.trials), "smoke": spec.smoke},
        sweep_file=options.file)
    _TRACKERS[meta["parent_run_id"]] = tracker
    tracker.notify = out
    unsent = tracker.start_sending(runs / f"{meta['stamp']}.mlflow-journal.jsonl")
    if unsent:
        out(f"sending {unsent} MLflow record(s) the interrupted driver had not sent")
    if options.resume:
        tracker.wait_until_sent(options.tracking_flush_timeout)
        tracker.load_children()  # the high-water steps, after the replayed records
    return tracker


def _close_interrupted_sweeps(tracker: SweepTracker, runs: Path, spec: SweepSpec, uri: str, file: Path,
                              out: Callable[[str], None]) -> None:
    """A new sweep of a study whose last sweep was killed: close that one's runs (KILLED) and say so."""
    for path in sorted(runs.glob("*.json")):
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(old, dict) or old.get("status") != "RUNNING" or not old.get("parent_run_id"):
            continue
        if old.get("tracking_uri") == uri:
            try:
                closed = tracker.close_interrupted(old["parent_run_id"])
            except Exception as error:  # an old record pointing at a run that is gone: say it, go on
                out(f"note: could not close the runs of the interrupted sweep {old['stamp']}: {error}")
                continue
            out(f"note: the earlier sweep {old['stamp']} of {spec.name!r} was interrupted and not resumed; its "
                f"parent run and {closed} running trial run(s) are now marked KILLED in MLflow")
        else:
            out(f"note: the earlier sweep {old['stamp']} of {spec.name!r} (tracked in {old.get('tracking_uri')}) "
                "was interrupted and not resumed; its runs there stay as they were")
        old["status"] = "KILLED"
        _write_meta(path, old)


def _write_meta(path: Path, meta: dict) -> None:
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(meta, indent=2))
    partial.replace(path)


def _trainable():
    from rllib_sparse.sweep.trainable import run_trial

    return run_trial


def _trial_index(result, trials: list[PlannedTrial]) -> tuple[int | None, str]:
    """(grid index, name) of a Tune result. A trial whose actor never ran has no config in its result
    (``config`` None): it is found by its folder, which is named after its grid point."""
    config = result.config or {}
    if "index" in config:
        return config["index"], trials[config["index"]].point.name
    name = Path(str(result.path or "")).name
    index = next((i for i, t in enumerate(trials) if t.point.name == name), None)
    return index, name or "(a trial that never started)"


def _param_space(spec: SweepSpec, trials: list[PlannedTrial]) -> dict:
    from ray import tune

    return {"spec": spec.model_dump(mode="json"), "index": tune.grid_search(list(range(len(trials))))}


def summary(spec, trials, grid, failed, uri, experiment_dir, out, experiment_id: str | None = None) -> None:
    """Final return per width x sparsity (and any training axis: a column each; mean over seeds), the
    failures, and where to look."""
    final = {_trial_index(r, trials)[0]: m.study_return(r.metrics or {}) for r in grid} if grid else {}
    evaluated = any(m.EVALUATION_RETURN in (r.metrics or {}) for r in grid or [])
    runner = runner_class(spec.algorithm)
    training_axes = [axis for axis in spec.grid if axis.startswith("training.")]
    cells: dict[tuple, list[float]] = {}
    for index, t in enumerate(trials):
        # The shared width when the grid scales it (actor and critic together), else the actor's.
        shape = t.point.model.network("actor")
        width = t.point.model.width or shape.width
        sparsity = runner.params(spec, t.point).get("sparsity", shape.sparsity)
        column = (sparsity, *(t.point.axes[axis] for axis in training_axes))
        ret = final.get(index)
        cells.setdefault((width, column), [])
        if ret is not None:
            cells[(width, column)].append(ret)
    widths = sorted({w for w, _ in cells})
    columns = sorted({c for _, c in cells}, key=lambda c: tuple(str(v) if i else v for i, v in enumerate(c)))
    labels = [" ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in c) for c in columns]
    size = max([10, *(len(label) + 2 for label in labels)])
    out("")
    kind = "evaluation" if evaluated else "episode"
    out(f"final {kind} return (mean over seeds) of {spec.name!r}:")
    head = " ".join(["sparsity", *(axis[len("training."):] for axis in training_axes)])
    out(f"width \\ {head} ".rjust(17) + "".join(f"{label:>{size}}" for label in labels))
    for w in widths:
        row = [cells.get((w, c)) for c in columns]
        out(f"{w:>16} " + "".join(f"{statistics.fmean(v):>{size}.1f}" if v else f"{'-':>{size}}" for v in row))
    if failed:
        out(f"FAILED trials ({len(failed)}): {', '.join(failed)}")
    out(f"Tune folder: {experiment_dir}")
    if uri:
        out(f"MLflow: {ui_command(uri)}   (experiment {spec.experiment_name!r})")
        if experiment_id is not None:
            # MLflow 3.17's UI opens in its GenAI mode (a traces overview); this opens the run table.
            out(f"        runs: {runs_view(uri, experiment_id)}")
    sys.stdout.flush()
