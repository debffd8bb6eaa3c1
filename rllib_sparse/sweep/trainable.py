"""The Tune function that runs one trial: build the RLlib algorithm, train, report, checkpoint.

A function trainable (not the Algorithm class itself) so that each trial is built from its grid point
exactly as ``rllib-sparse validate`` planned it, reports a curated set of metrics instead of RLlib's
hundreds of keys, and decides its own stop (so the final checkpoint is always written).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

#: Reported key -> path in RLlib's result dict.
_RESULT_PATHS = {
    "episode_return_mean": ("env_runners", "episode_return_mean"),
    "episode_return_max": ("env_runners", "episode_return_max"),
    "episode_len_mean": ("env_runners", "episode_len_mean"),
    "env_steps": ("num_env_steps_sampled_lifetime",),
    "iteration": ("training_iteration",),
    "time_total_s": ("time_total_s",),
    "time_this_iter_s": ("time_this_iter_s",),
}
#: Learner statistics worth a curve (matched as substrings of the key).
_LEARNER_KEYS = ("loss", "entropy", "kl", "global_norm", "vf_explained_var", "alpha_value", "qf_mean",
                 "td_error_mean")

#: Largest |weight| at a pruned place over learners and env runners; 0.0 while the masks hold.
MASK_METRIC = "mask/max_masked_weight"

#: Result key carrying gradient-cosine matrices (JSON text, ``{network: rows}``) to the driver's tracker.
MATRICES_KEY = "diag_cosine_matrices"

#: ``TRIAL_SUBSTRING@ITERATION@MARKER_FILE``: crash that trial once, after that iteration (fault tests).
FAULT_ENV = "RLLIB_SPARSE_INJECT_FAULT"

#: The trial's own record of its progress, in its Tune folder (see ``TrialProgress``).
PROGRESS_FILE = "rllib_sparse_progress.json"
#: Result key of a trial that had already finished before an interruption and was not run again.
ALREADY_FINISHED_KEY = "already_finished"
#: Result key naming the trial's newest checkpoint folder (a path on the experiment's storage).
CHECKPOINT_PATH_KEY = "checkpoint_path"


class TrialProgress:
    """The newest checkpoint of a trial, whether it is done, and each time it was started.

    Why not rely on Tune's experiment state: the driver saves it only every so often (at least every
    10 s, often far less), so a driver killed after a trial finished or checkpointed restores an older
    view, and Tune then re-runs finished trials and resumes running ones from stale checkpoints. This
    file, in the trial's own folder, is replaced atomically right after each checkpoint has been
    persisted (``tune.report`` returns only then), so it never names a checkpoint that is incomplete.
    Its ``attempts`` list (one entry per start: from which iteration, or that it was already done) is
    the audit trail of retries and resumes.
    """

    def __init__(self):
        from ray import tune

        storage = tune.get_context().get_storage()
        self.filesystem = storage.storage_filesystem
        self.folder = storage.trial_fs_path
        self.path = f"{self.folder}/{PROGRESS_FILE}"
        self.record = self._read() or {"checkpoint": None, "iteration": 0, "done": False, "final": {},
                                       "attempts": []}

    def _read(self) -> dict | None:
        import pyarrow.fs

        if self.filesystem.get_file_info(self.path).type != pyarrow.fs.FileType.File:
            return None
        with self.filesystem.open_input_stream(self.path) as stream:
            return json.loads(stream.read().decode())

    def started(self, node_id: str) -> None:
        """Note this start: from the newest checkpoint's iteration, or as already done."""
        self.record["attempts"].append({"from_iteration": self.record["iteration"], "node_id": node_id,
                                        "already_done": self.record["done"], "time": time.time()})
        self._write()

    def checkpointed(self, checkpoint_path: str, iteration: int, done: bool, final: dict) -> None:
        self.record.update(checkpoint=checkpoint_path, iteration=iteration, done=done, final=final)
        self._write()

    def _write(self) -> None:
        partial = f"{self.path}.partial"
        self.filesystem.create_dir(self.folder, recursive=True)
        with self.filesystem.open_output_stream(partial) as stream:
            stream.write(json.dumps(self.record).encode())
        self.filesystem.move(partial, self.path)  # a rename on local and NFS storage: all or nothing


def curate(result: dict, full_games: bool = False) -> dict[str, float]:
    """The metrics a study needs, from one RLlib result.

    ``full_games`` (Atari): RLlib's episodes are then single lives with clipped rewards, the training
    signal; ``episode_return_mean`` is the full game's unclipped return instead (absent until a game
    ends), and RLlib's value moves to ``training_episode_return_mean``.
    """
    out: dict[str, float] = {}
    for key, path in _RESULT_PATHS.items():
        value: Any = result
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, (int, float)):
            out[key] = float(value)
    for module_id, stats in (result.get("learners") or {}).items():
        if module_id.startswith("__") or not isinstance(stats, dict):
            continue
        for key, value in stats.items():
            if isinstance(value, (int, float)) and any(k in key for k in _LEARNER_KEYS):
                out[f"learner/{key}"] = float(value)
    runners = result.get("env_runners") or {}
    if full_games:
        for key in ("episode_return_mean", "episode_return_max", "episode_len_mean"):
            value = out.pop(key, None)
            if key == "episode_return_mean" and value is not None:
                out["training_episode_return_mean"] = value
        if isinstance(runners.get("game_return_mean"), (int, float)):
            out["episode_return_mean"] = float(runners["game_return_mean"])
            out["episode_len_mean"] = float(runners["game_length_mean"])
    if out.get("time_this_iter_s"):
        sampled = ((result.get("env_runners") or {}).get("num_env_steps_sampled") or 0)
        out["env_steps_per_s"] = float(sampled) / out["time_this_iter_s"]
    return out


def stop_reached(stop, metrics: dict[str, float]) -> bool:
    return ((stop.env_steps is not None and metrics.get("env_steps", 0) >= stop.env_steps)
            or (stop.iterations is not None and metrics.get("iteration", 0) >= stop.iterations)
            or (stop.time_s is not None and metrics.get("time_total_s", 0) >= stop.time_s))


def _maybe_inject_fault(trial_name: str, iteration: float) -> None:
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    target, at, marker = spec.split("@", 2)
    if target in trial_name and int(at) == int(iteration) and not Path(marker).exists():
        Path(marker).write_text(trial_name)
        raise RuntimeError(f"injected fault in {trial_name} after iteration {int(iteration)} ({FAULT_ENV})")


def run_trial(params: dict) -> None:
    """Tune entry point. ``params``: the sweep spec (as a dict) and this trial's grid index."""
    import ray
    from ray import tune

    from rllib_sparse.envs.atari import is_atari_id
    from rllib_sparse.rllib.diagnostics import learner_diagnostics
    from rllib_sparse.rllib.inspection import max_masked_weight
    from rllib_sparse.sweep.plan import trial_config
    from rllib_sparse.sweep.spec import SweepSpec

    spec = SweepSpec.model_validate(params["spec"])
    point = spec.points()[params["index"]]
    node_id = ray.get_runtime_context().get_node_id()
    progress = TrialProgress()
    progress.started(node_id)
    record = progress.record
    if record["done"]:
        # Finished before the sweep was interrupted: report its final result again, train nothing.
        tune.report({**record["final"], ALREADY_FINISHED_KEY: True, CHECKPOINT_PATH_KEY: record["checkpoint"]})
        return
    algo = trial_config(spec, point).build_algo()
    checkpoint = tune.get_checkpoint()
    if record["checkpoint"] is not None:  # as new as, or newer than, what Tune's state remembers
        checkpoint = tune.Checkpoint(record["checkpoint"], filesystem=progress.filesystem)
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            algo.restore_from_path(folder)
    try:
        while True:
            metrics = curate(algo.train(), full_games=is_atari_id(point.env))
            _maybe_inject_fault(point.name, metrics.get("iteration", math.nan))
            done = stop_reached(spec.stop, metrics)
            every = spec.checkpoint.frequency
            report = {**metrics, "node_id": node_id, "done_training": done}
            iteration = int(metrics["iteration"])
            if spec.diagnostics is not None and spec.diagnostics.due(iteration, done):
                found = learner_diagnostics(algo, **spec.diagnostics.learner_settings())
                report.update(found["metrics"])
                if found["cosines"] and (done or iteration in spec.diagnostics.save_matrix_at):
                    report[MATRICES_KEY] = json.dumps(
                        {network: np.round(matrix, 5).tolist() for network, matrix in found["cosines"].items()})
            if done or (every and iteration % every == 0):
                # Mask integrity, checked on every copy of the module that a checkpoint is about to keep.
                report[MASK_METRIC] = max_masked_weight(algo)
                with tempfile.TemporaryDirectory() as folder:
                    algo.save_to_path(folder)
                    tune.report(report, checkpoint=tune.Checkpoint.from_directory(folder))
                persisted = tune.get_checkpoint()  # the copy on the experiment's storage, complete now
                final = {k: v for k, v in report.items() if isinstance(v, (int, float, str)) and k != MATRICES_KEY}
                progress.checkpointed(persisted.path, iteration, done, final)
            else:
                tune.report(report)
            if done:
                return
    finally:
        algo.stop()
