"""The Tune function that runs one trial: its runner's iterations, reported and checkpointed for Tune.

A function trainable (not RLlib's Algorithm class itself) so that each trial is built from its grid
point exactly as ``rllib-sparse validate`` planned it, by whichever trial runner its algorithm names
(``rllib_sparse.sweep.trial``), reports a curated set of metrics, and decides its own stop (so the
final checkpoint is always written).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from rllib_sparse import metrics as m

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

    from rllib_sparse.sweep.spec import SweepSpec, import_plugins
    from rllib_sparse.sweep.trial import iterate_trial, runner_class

    import_plugins(params["spec"].get("plugins"))  # before validation: they may register the algorithm
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
    runner = runner_class(spec.algorithm)(spec, point)
    runner.build()
    checkpoint = tune.get_checkpoint()
    if record["checkpoint"] is not None:  # as new as, or newer than, what Tune's state remembers
        checkpoint = tune.Checkpoint(record["checkpoint"], filesystem=progress.filesystem)
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            runner.restore(folder)
    try:
        for step in iterate_trial(runner, spec):
            _maybe_inject_fault(point.name, step.metrics.get(m.ITERATION, math.nan))
            report = {**step.metrics, **step.diagnostics, "node_id": node_id, m.DONE: step.done}
            if step.cosines and (step.done or step.iteration in spec.diagnostics.save_matrix_at):
                report[MATRICES_KEY] = json.dumps(
                    {network: np.round(matrix, 5).tolist() for network, matrix in step.cosines.items()})
            if not step.checkpoint_due:
                tune.report(report)
                continue
            # Mask integrity, checked on every copy of the networks that a checkpoint is about to keep.
            report[m.MAX_MASKED_WEIGHT] = runner.max_masked_weight()
            with tempfile.TemporaryDirectory() as folder:
                runner.save(folder)
                tune.report(report, checkpoint=tune.Checkpoint.from_directory(folder))
            persisted = tune.get_checkpoint()  # the copy on the experiment's storage, complete now
            final = {k: v for k, v in report.items() if isinstance(v, (int, float, str)) and k != MATRICES_KEY}
            progress.checkpointed(persisted.path, step.iteration, step.done, final)
    finally:
        runner.stop()
