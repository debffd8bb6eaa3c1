"""Run a sweep with Ray Tune, track it in MLflow, print progress a person can read.

Exit codes: 0 every trial finished; 1 some trial failed after its retries (named in the summary);
2 bad input (file, flags, unreachable cluster or tracking server), detected before any trial starts
(``rllib_sparse.sweep.preflight``). The Tune callbacks are in ``callbacks``, the closing table in
``summary``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path

from rllib_sparse import metrics as m
from rllib_sparse.sweep.callbacks import _TRACKERS, ProgressPrinter, TrackingCallback
from rllib_sparse.sweep.lock import StudyLock, StudyLockedError, new_stamp
from rllib_sparse.sweep.logs import LibraryLogs
from rllib_sparse.sweep.preflight import Prepared, SweepInputError, SweepOptions, check_resources, prepare
from rllib_sparse.sweep.spec import SweepSpec
from rllib_sparse.sweep.summary import summary, trial_index
from rllib_sparse.sweep.tracking import SweepTracker, first_line, store_cannot_write
from rllib_sparse.sweep.trial import PlannedTrial, runner_class

__all__ = ["SweepInputError", "SweepOptions", "run_sweep", "run_prepared"]


def run_sweep(options: SweepOptions, out: Callable[[str], None] = print) -> int:
    """Run (or ``resume``) the sweep of ``options.file``; returns the exit code."""
    return run_prepared(options, prepare(options), out)


def run_prepared(options: SweepOptions, prepared: Prepared, out: Callable[[str], None] = print) -> int:
    """Run a sweep whose input ``prepare`` has checked; returns the exit code. The study's lock is
    taken first, before Ray starts: a second driver of the same study is refused in one line."""
    lock = StudyLock(prepared.study_dir)
    try:
        lock.acquire()
    except StudyLockedError as error:
        raise SweepInputError(str(error)) from None
    try:
        with LibraryLogs(echo=options.verbose) as logs:
            try:
                return _run(options, prepared, logs, out)
            finally:
                logs.discard()  # only if the sweep never got its folder (bad input found after Ray started)
    finally:
        lock.release()


def _run(options: SweepOptions, prepared: Prepared, logs: LibraryLogs, out: Callable[[str], None]) -> int:
    spec, trials, uri, runs = prepared.spec, prepared.trials, prepared.uri, prepared.study_dir
    meta = dict(prepared.meta) if prepared.meta else {
        "stamp": new_stamp(runs), "file": str(options.file.resolve()), "tracking_uri": uri,
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
        # Only when joining a cluster: a local start spawns Ray's processes, which must not inherit the file.
        with logs.native_stderr() if options.address else contextlib.nullcontext():
            _start_ray(options)
        logs.recapture()  # ray.init put its own terminal handler back on the "ray" logger
    status, failed, unfinished, grid, tracker, wrote_record = "FAILED", [], [], None, None, False
    try:
        bundles = runner_class(spec.algorithm).resources(spec, trials[0].point)
        nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
        check_resources(spec, trials, bundles, nodes)

        # The input is good and the cluster can host it: from here on the sweep writes.
        runs.mkdir(parents=True, exist_ok=True)
        logs.move_to(runs / f"{meta['stamp']}.log")
        logging.getLogger(__name__).info("driver pid %d on %s %s sweep %s of %s", os.getpid(), socket.gethostname(),
                                         "resumes" if options.resume else "starts", meta["stamp"], options.file)
        if uri:
            tracker = _start_tracking(options, prepared, meta, uri, out)
        meta["status"] = "RUNNING"
        _write_meta(runs / f"{meta['stamp']}.json", meta)
        wrote_record = True  # from here on, this driver owns the record's status

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
        failed = [trial_index(r, trials)[1] for r in grid if r.error is not None]
        # Tune returns normally on Ctrl-C too, with the running trials stopped where they were and the
        # trials it had not started yet missing from the grid altogether.
        finished = {trial_index(r, trials)[1] for r in grid if r.error is None and (r.metrics or {}).get(m.DONE)}
        unfinished = [t.point.name for t in trials if t.point.name not in finished and t.point.name not in failed]
        status = "KILLED" if unfinished else "FAILED" if failed else "FINISHED"
    except KeyboardInterrupt:
        status, unfinished = "KILLED", []
        raise
    finally:
        unsent = 0
        if tracker is not None:
            for name in unfinished:
                if tracker.has_run(name):  # a trial that never started has no run to close
                    tracker.end_trial(name, "KILLED")  # reopened by --resume; never left RUNNING
            tracker.end_parent(status)
            unsent = tracker.close(options.tracking_flush_timeout, progress=out)
            _TRACKERS.pop(tracker.parent_run_id, None)
        if wrote_record:
            meta["status"] = status
            _write_meta(runs / f"{meta['stamp']}.json", meta)
        if started_ray:
            ray.shutdown()
    summary(spec, trials, grid, failed, uri, experiment_dir, out,
            experiment_id=tracker.experiment_id if tracker is not None else None, unfinished=unfinished)
    out(f"Ray, Tune and MLflow logs: {logs.path}")
    rejected = tracker.rejected if tracker is not None else []
    if rejected:
        out(f"MLflow rejected {len(rejected)} record(s) as invalid; they are kept in {tracker.rejected_file} "
            f"(first: {rejected[0]})")
    if unsent:
        out(f"MLflow at {uri} did not take {unsent} record(s) ({tracker.outage_reason or 'unreachable'}); they are "
            f"kept in {tracker.journal}; send them with: rllib-sparse sweep {options.file} --resume")
    if unfinished:
        out(f"interrupted: {len(unfinished)} of {len(trials)} trial(s) unfinished; continue with: "
            f"rllib-sparse sweep {options.file} --resume")
    return 1 if failed or unfinished or unsent or rejected else 0


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
    """The sweep's tracker, its parent run made (or reopened) and its journal sending; a store that cannot
    be written is a one-line refusal here (no trial has started), not a traceback."""
    try:
        return _open_tracking(options, prepared, meta, uri, out)
    except Exception as error:
        if not store_cannot_write(error):
            raise
        # The pre-flight found the store writable; it filled up or went away since: nothing has started.
        raise SweepInputError(f"tracking store {uri} cannot be written ({first_line(error)[:300]}); no trial "
                              f"was started; allowed: a store with free space that this user can write") from None


def _open_tracking(options: SweepOptions, prepared: Prepared, meta: dict, uri: str,
                   out: Callable[[str], None]) -> SweepTracker:
    spec, runs = prepared.spec, prepared.study_dir
    tracker = SweepTracker(uri, spec.experiment_name)
    tracker.notify = out
    if not options.resume:
        _close_interrupted_sweeps(tracker, runs, spec, uri, options.file, out)
    meta["parent_run_id"] = tracker.start_parent(
        f"{spec.name}-{meta['stamp']}", run_id=meta.get("parent_run_id"),
        params={"algorithm": spec.algorithm, "env": spec.env, "trials": len(prepared.trials), "smoke": spec.smoke},
        sweep_file=options.file)
    _TRACKERS[meta["parent_run_id"]] = tracker
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


def _param_space(spec: SweepSpec, trials: list[PlannedTrial]) -> dict:
    from ray import tune

    # The spec as JSON: Tune writes each trial's config to its params.json, where a typed object would
    # become an unreadable repr. A trial validates it once and takes its grid point by index.
    return {"spec": spec.model_dump(mode="json"), "index": tune.grid_search(list(range(len(trials))))}


