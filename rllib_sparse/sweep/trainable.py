"""The Tune function that runs one trial: its runner's iterations, reported and checkpointed for Tune.

A function trainable (not RLlib's Algorithm class itself) so that each trial is built from its grid
point exactly as ``rllib-sparse validate`` planned it, by whichever trial runner its algorithm names
(``rllib_sparse.sweep.trial``), reports a curated set of metrics, and decides its own stop (so the
final checkpoint is always written).

Damaged files on storage (a truncated progress record or checkpoint, e.g. a full disk or a copy cut
short) are repaired where they can be: a progress record that cannot be read is rebuilt from the trial
folder and kept aside as ``*.damaged``; a checkpoint that fails its manifest or its restore is passed
over for the next older one. Each repair is one logged line, kept in the progress record's attempt and
reported with the trial's next result (``REPAIRS_KEY``); when no checkpoint is intact the trial fails
with one line naming the damaged folders and what to do.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import math
import os
import pickle
import re
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rllib_sparse import metrics as m

if TYPE_CHECKING:
    from rllib_sparse.sweep.trial import TrialRunner

logger = logging.getLogger(__name__)

#: Result key carrying gradient-cosine matrices (JSON text, ``{network: rows}``) to the driver's tracker.
MATRICES_KEY = "diag_cosine_matrices"

#: ``TRIAL_SUBSTRING@ITERATION@MARKER_FILE``: crash that trial once, after that iteration (fault tests);
#: several such specs are separated by ``os.pathsep``.
FAULT_ENV = "RLLIB_SPARSE_INJECT_FAULT"

#: The trial's own record of its progress, in its Tune folder (see ``TrialProgress``).
PROGRESS_FILE = "rllib_sparse_progress.json"
#: Suffix of a progress record that could not be read, kept aside (never deleted: it is evidence).
DAMAGED_SUFFIX = ".damaged"
#: In each checkpoint folder: its iteration, done flag, final result and each file's size and sha256.
MANIFEST_FILE = "rllib_sparse_checkpoint.json"
#: Result key of a trial that had already finished before an interruption and was not run again.
ALREADY_FINISHED_KEY = "already_finished"
#: Result key naming the trial's newest checkpoint folder (a path on the experiment's storage).
CHECKPOINT_PATH_KEY = "checkpoint_path"
#: Result key (text, one line per repair) of the damaged files this start of the trial found and worked around.
REPAIRS_KEY = "rllib_sparse_repairs"

#: Tune's per-trial result log (one JSON line per reported result), a source for rebuilding the record.
_TUNE_RESULTS = "result.json"
#: Keys Tune adds to every result: not part of a trial's final result.
_TUNE_KEYS = frozenset({"config", "date", "done", "hostname", "node_ip", "pid", "timestamp", "trial_id",
                        "training_iteration", "iterations_since_restore", "time_since_restore",
                        "timesteps_since_restore", "checkpoint_dir_name", "should_checkpoint", "experiment_tag",
                        "timesteps_total", "episodes_total"})
_CHECKPOINT_DIR = re.compile(r"checkpoint_(\d+)")
_RECORD_KEYS = {"checkpoint": (str, type(None)), "iteration": int, "done": bool, "final": dict, "attempts": list}


class DamagedCheckpointError(RuntimeError):
    """A checkpoint that cannot be restored because a file in it is missing, cut short or altered.

    Raised by a runner's ``restore`` (and by the manifest check) so that ``run_trial`` passes over
    exactly these and tries an older checkpoint, while any other restore error still fails the trial.
    """


def damaged_checkpoint(error: BaseException, what: str = "") -> DamagedCheckpointError | None:
    """``error`` (raised reading a checkpoint) as a ``DamagedCheckpointError`` naming ``what`` when it
    is one a damaged file causes (unpickling, a zip or JSON cut short, a missing file); None otherwise."""
    if isinstance(error, DamagedCheckpointError):
        return error
    damage = (isinstance(error, (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, json.JSONDecodeError,
                                 UnicodeDecodeError, FileNotFoundError))
              or isinstance(error, OSError) and error.errno == errno.EINVAL  # torch.load of a cut-short zip
              or isinstance(error, RuntimeError) and "PytorchStreamReader" in str(error))
    if not damage:
        return None
    first = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    prefix = f"{what}: " if what else ""
    return DamagedCheckpointError(f"{prefix}{type(error).__name__}: {first}"[:300])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder: str, iteration: int, done: bool, final: dict) -> None:
    """Describe a saved checkpoint folder in it: what it holds (iteration, done, final result) and each
    file's size and sha256, so that damage is found before a restore and the folder explains itself."""
    root = Path(folder)
    files = {path.relative_to(root).as_posix(): {"size": path.stat().st_size, "sha256": _sha256(path)}
             for path in sorted(root.rglob("*")) if path.is_file() and path.name != MANIFEST_FILE}
    manifest = {"iteration": iteration, "done": done, "final": final, "files": files}
    (root / MANIFEST_FILE).write_text(json.dumps(manifest))


def verify_checkpoint(folder: str) -> None:
    """Raise ``DamagedCheckpointError`` naming the first file of ``folder`` that is missing or differs
    from its manifest. A folder without a readable manifest (older sweeps) passes: its restore decides."""
    root = Path(folder)
    if not root.is_dir():
        raise DamagedCheckpointError("the folder is missing")
    try:
        files = json.loads((root / MANIFEST_FILE).read_text())["files"]
        expected = {str(name): (int(want["size"]), str(want["sha256"])) for name, want in files.items()}
    except FileNotFoundError:
        return
    except (ValueError, KeyError, TypeError, AttributeError, OSError) as error:
        logger.warning("checkpoint manifest %s cannot be read (%s); the restore decides whether the checkpoint "
                       "is intact", root / MANIFEST_FILE, type(error).__name__)
        return
    for name, (size, sha256) in expected.items():
        path = root / name
        if not path.is_file():
            raise DamagedCheckpointError(f"{name} is missing")
        actual = path.stat().st_size
        if actual != size:
            raise DamagedCheckpointError(f"{name} has {actual} bytes, {size} were saved")
        if _sha256(path) != sha256:
            raise DamagedCheckpointError(f"{name} differs from what was saved (sha256)")


class TrialProgress:
    """The newest checkpoint of a trial, whether it is done, and each time it was started.

    Why not rely on Tune's experiment state: the driver saves it only every so often (at least every
    10 s, often far less), so a driver killed after a trial finished or checkpointed restores an older
    view, and Tune then re-runs finished trials and resumes running ones from stale checkpoints. This
    file, in the trial's own folder, is replaced atomically right after each checkpoint has been
    persisted (``tune.report`` returns only then), so it never names a checkpoint that is incomplete.
    Its ``attempts`` list (one entry per start: from which iteration, or that it was already done; with
    ``repairs`` when damaged files were worked around) is the audit trail of retries and resumes.

    A record that cannot be read (cut short, not JSON, keys missing) is kept aside as ``*.damaged`` and
    rebuilt from what the trial folder holds: its ``checkpoint_*`` folders (newest first) described by
    their manifests, else by Tune's ``result.json`` lines; so a finished trial is still known as finished
    and a running one resumes from its newest intact checkpoint.

    ``filesystem`` and ``folder`` (a pyarrow filesystem and the trial's folder on it) default to the
    running Tune trial's storage.
    """

    def __init__(self, filesystem=None, folder: str | None = None):
        if filesystem is None or folder is None:
            from ray import tune

            storage = tune.get_context().get_storage()
            filesystem, folder = storage.storage_filesystem, storage.trial_fs_path
        self.filesystem = filesystem
        self.folder = folder
        self.path = f"{self.folder}/{PROGRESS_FILE}"
        #: One line per damaged file found and worked around by this start (logged, and kept in its attempt).
        self.repairs: list[str] = []
        self._infos: dict[str, dict | None] = {}
        self._results: dict[str, dict] | None = None
        self.record = _fresh_record()
        self.record = self._load()

    def note(self, line: str) -> None:
        """A repair: logged as a warning and kept for this start's attempt and first result."""
        logger.warning("%s", line)
        self.repairs.append(line)

    # ------------------------------------------------------------------ reading, and rebuilding

    def _load(self) -> dict:
        import pyarrow.fs

        if self.filesystem.get_file_info(self.path).type != pyarrow.fs.FileType.File:
            if not self.checkpoint_folders():
                return _fresh_record()  # a new trial
            record = self._derive()
            self.note(f"trial progress file {self.path} is missing; {self._derived(record)}")
            self._write_record(record)
            return record
        try:
            with self.filesystem.open_input_stream(self.path) as stream:
                record = json.loads(stream.read().decode())
            problem = _record_problem(record)
        except (ValueError, UnicodeDecodeError) as error:
            problem = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        if problem is None:
            return record
        aside = self._keep_aside()
        record = self._derive()
        self.note(f"trial progress file {self.path} is damaged ({problem}); kept as {aside}; {self._derived(record)}")
        self._write_record(record)
        return record

    def _keep_aside(self) -> str:
        import pyarrow.fs

        aside, n = f"{self.path}{DAMAGED_SUFFIX}", 1
        while self.filesystem.get_file_info(aside).type != pyarrow.fs.FileType.NotFound:  # never overwrite evidence
            n += 1
            aside = f"{self.path}{DAMAGED_SUFFIX}.{n}"
        self.filesystem.move(self.path, aside)
        return aside

    def _derived(self, record: dict) -> str:
        if record["checkpoint"] is None:
            return "rebuilt from the trial folder: no checkpoint, the trial starts from the beginning"
        state = "finished" if record["done"] else f"at iteration {record['iteration']}"
        return f"rebuilt from the trial folder: newest checkpoint {record['checkpoint']} ({state})"

    def _derive(self) -> dict:
        """The record the trial folder implies: its newest checkpoint and what it holds."""
        record = _fresh_record()
        for path in self.checkpoint_folders():
            info = self.info(path)
            if info is None:
                continue  # neither a manifest nor a result line: its iteration is unknown, try it last
            record.update(checkpoint=path, iteration=info["iteration"], done=info["done"], final=info["final"])
            return record
        folders = self.checkpoint_folders()
        if folders:
            record["checkpoint"] = folders[0]
        return record

    def checkpoint_folders(self) -> list[str]:
        """The trial's ``checkpoint_*`` folders on storage, newest first (by iteration where known, then index)."""
        import pyarrow.fs

        selector = pyarrow.fs.FileSelector(self.folder, allow_not_found=True)
        found = [info.path.rstrip("/") for info in self.filesystem.get_file_info(selector)
                 if info.type == pyarrow.fs.FileType.Directory and _CHECKPOINT_DIR.fullmatch(info.base_name)]
        return sorted(found, key=self._age, reverse=True)

    def _age(self, path: str) -> tuple[int, int]:
        """(iteration, Tune's index) of a checkpoint folder, the larger the newer; -1 where unknown."""
        info = self.info(path)
        if info is not None:
            iteration = info["iteration"]
        else:
            iteration = self.record["iteration"] if path == self.record["checkpoint"] else -1
        match = _CHECKPOINT_DIR.fullmatch(path.rstrip("/").rsplit("/", 1)[-1])
        return iteration, int(match.group(1)) if match else -1

    def info(self, path: str) -> dict | None:
        """``{"iteration", "done", "final"}`` of a checkpoint folder: from its manifest, else from Tune's
        result line that reported it; None when neither says."""
        if path not in self._infos:
            self._infos[path] = self._manifest_info(path) or self._result_info(path)
        return self._infos[path]

    def _manifest_info(self, path: str) -> dict | None:
        try:
            with self.filesystem.open_input_stream(f"{path}/{MANIFEST_FILE}") as stream:
                manifest = json.loads(stream.read().decode())
            return {"iteration": int(manifest["iteration"]), "done": bool(manifest["done"]),
                    "final": dict(manifest["final"])}
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _result_info(self, path: str) -> dict | None:
        if self._results is None:
            self._results = {}
            try:
                with self.filesystem.open_input_stream(f"{self.folder}/{_TUNE_RESULTS}") as stream:
                    text = stream.read().decode(errors="replace")
            except OSError:
                text = ""
            for line in text.splitlines():
                try:
                    result = json.loads(line)
                except ValueError:
                    continue  # a line cut short: the others still count
                if isinstance(result, dict) and isinstance(result.get("checkpoint_dir_name"), str):
                    self._results[result["checkpoint_dir_name"]] = result  # the last report of that folder
        result = self._results.get(path.rstrip("/").rsplit("/", 1)[-1])
        iteration = None if result is None else result.get(m.ITERATION, result.get("training_iteration"))
        if not isinstance(iteration, (int, float)) or isinstance(iteration, bool):
            return None
        final = {k: v for k, v in result.items()
                 if isinstance(v, (int, float, str)) and k not in _TUNE_KEYS and k not in (MATRICES_KEY, REPAIRS_KEY)}
        return {"iteration": int(iteration), "done": bool(result.get(m.DONE)), "final": final}

    def candidates(self, tune_checkpoint: str | None = None) -> list[str]:
        """The checkpoint to restore first: the record's, else Tune's (none: the trial starts afresh)."""
        newest = self.record["checkpoint"] or tune_checkpoint
        return [newest.rstrip("/")] if newest is not None else []

    def older_than(self, path: str) -> list[str]:
        """The trial's other checkpoint folders not newer than ``path``, newest first (one as old: the same
        checkpoint under the trial folder when ``path`` names it where the experiment was before a move)."""
        age = self._age(path)
        return [folder for folder in self.checkpoint_folders() if folder != path and self._age(folder) <= age]

    # ------------------------------------------------------------------ writing

    def started(self, node_id: str) -> None:
        """Note this start: from the newest checkpoint's iteration, or as already done."""
        attempt = {"from_iteration": self.record["iteration"], "node_id": node_id,
                   "already_done": self.record["done"], "time": time.time()}
        if self.repairs:
            attempt["repairs"] = list(self.repairs)
        self.record["attempts"].append(attempt)
        self._write()

    def restored(self, checkpoint_path: str | None, iteration: int) -> None:
        """The trial continues from an older checkpoint than the record named (or from the start)."""
        self.record.update(checkpoint=checkpoint_path, iteration=iteration)

    def checkpointed(self, checkpoint_path: str, iteration: int, done: bool, final: dict) -> None:
        self.record.update(checkpoint=checkpoint_path, iteration=iteration, done=done, final=final)
        self._write()

    def _write(self) -> None:
        self._write_record(self.record)

    def _write_record(self, record: dict) -> None:
        partial = f"{self.path}.partial"
        self.filesystem.create_dir(self.folder, recursive=True)
        with self.filesystem.open_output_stream(partial) as stream:
            stream.write(json.dumps(record).encode())
        self.filesystem.move(partial, self.path)  # a rename on local and NFS storage: all or nothing


def _fresh_record() -> dict:
    return {"checkpoint": None, "iteration": 0, "done": False, "final": {}, "attempts": []}


def _record_problem(record) -> str | None:
    """What is wrong with a parsed progress record (None: nothing)."""
    if not isinstance(record, dict):
        return f"not a JSON object but {type(record).__name__}"
    for key, kind in _RECORD_KEYS.items():
        if key not in record:
            return f"no {key!r} key"
        if not isinstance(record[key], kind) or kind is int and isinstance(record[key], bool):
            return f"{key!r} is {record[key]!r}"
    return None


def restore_newest_intact(make_runner: Callable[[], TrialRunner], progress: TrialProgress,
                          tune_checkpoint: str | None = None) -> TrialRunner:
    """A runner built by ``make_runner`` and restored from the newest intact checkpoint of the trial.

    Tries the record's checkpoint (else Tune's), then each older ``checkpoint_*`` folder of the trial;
    a checkpoint that fails its manifest or whose restore raises ``DamagedCheckpointError`` is named in
    one logged line and passed over (the half-restored runner is stopped and a new one built). Updates
    ``progress.record`` to the checkpoint restored. No checkpoint (or only folders that are gone, e.g.
    deleted to retrain): the runner starts from the beginning. Every one damaged: a one-line
    ``DamagedCheckpointError`` naming them and what to do. Any other restore error propagates.
    """
    import pyarrow.fs
    from ray import tune

    runner = make_runner()
    try:
        runner.build()
        first = progress.candidates(tune_checkpoint)
        queue, listed, damaged, gone = list(first), not first, [], []
        while queue or not listed:
            if not queue:
                queue, listed = progress.older_than(first[0]), True
                continue
            path = queue.pop(0)
            if progress.filesystem.get_file_info(path).type != pyarrow.fs.FileType.Directory:
                gone.append(path)
                progress.note(f"checkpoint {path} is gone; trying the next older checkpoint of the trial")
                continue
            try:
                with tune.Checkpoint(path, filesystem=progress.filesystem).as_directory() as folder:
                    verify_checkpoint(folder)
                    runner.restore(folder)
            except Exception as error:
                damage = damaged_checkpoint(error)
                if damage is None:
                    raise
                damaged.append((path, str(damage)))
                progress.note(f"checkpoint {path} is damaged ({damage}); trying the next older checkpoint of the trial")
                runner.stop()
                runner = make_runner()  # the failed restore may have left part of the damaged state in it
                runner.build()
                continue
            if damaged or gone:
                info = progress.info(path)
                iteration = info["iteration"] if info is not None else progress.record["iteration"]
                progress.restored(path, iteration)
                progress.note(f"the trial continues from checkpoint {path} (iteration {iteration})")
            return runner
        if damaged:
            raise DamagedCheckpointError(_no_intact_checkpoint(progress.folder, damaged))
        if gone:
            progress.restored(None, 0)
            progress.note("no checkpoint of the trial is left; it trains from the beginning")
        return runner
    except BaseException:
        runner.stop()
        raise


def _no_intact_checkpoint(trial_folder: str, damaged: list[tuple[str, str]]) -> str:
    """One line (short enough for the progress output's failure line): the damaged checkpoints, newest
    first, by name within the trial folder, and what to do."""
    def short(path: str) -> str:
        return path[len(trial_folder) + 1:] if path.startswith(f"{trial_folder}/") else path

    def reason(why: str) -> str:
        why = " ".join(why.split())
        return why if len(why) <= 80 else why[:77] + "..."

    named = ", ".join(f"{short(path)} ({reason(why)})" for path, why in damaged[:2])
    if len(damaged) > 2:
        named += f" and {len(damaged) - 2} older one(s)"
    return (f"no intact checkpoint to continue from in {trial_folder}: {named} damaged; delete those folders "
            "to retrain the trial from the start, or put back an intact copy, then resume the sweep (--resume)")


def _maybe_inject_fault(trial_name: str, iteration: float) -> None:
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    for one in spec.split(os.pathsep):
        target, at, marker = one.split("@", 2)
        if target in trial_name and int(at) == int(iteration) and not Path(marker).exists():
            Path(marker).write_text(trial_name)
            raise RuntimeError(f"injected fault in {trial_name} after iteration {int(iteration)} ({FAULT_ENV})")


def run_trial(params: dict) -> None:
    """Tune entry point. ``params``: the sweep spec (as JSON) and this trial's grid index."""
    import ray
    from ray import tune

    from rllib_sparse.sweep.spec import SweepSpec, import_plugins
    from rllib_sparse.sweep.trial import iterate_trial, runner_class

    import_plugins(params["spec"].get("plugins"))  # before validation: they may register the algorithm
    spec = SweepSpec.model_validate(params["spec"])
    point = spec.point(params["index"])  # its own point only, not the whole grid
    node_id = ray.get_runtime_context().get_node_id()
    progress = TrialProgress()
    record = progress.record
    if record["done"]:
        # Finished before the sweep was interrupted: report its final result again, train nothing.
        progress.started(node_id)
        tune.report({**record["final"], ALREADY_FINISHED_KEY: True, CHECKPOINT_PATH_KEY: record["checkpoint"],
                     **({REPAIRS_KEY: "\n".join(progress.repairs)} if progress.repairs else {})})
        return

    def make_runner() -> TrialRunner:
        return runner_class(spec.algorithm)(spec, point)

    tune_checkpoint = tune.get_checkpoint()  # the record is as new as, or newer than, Tune's state
    runner = restore_newest_intact(make_runner, progress, tune_checkpoint and tune_checkpoint.path)
    try:
        progress.started(node_id)
        repairs = "\n".join(progress.repairs)
        for step in iterate_trial(runner, spec):
            _maybe_inject_fault(point.name, step.metrics.get(m.ITERATION, math.nan))
            report = {**step.metrics, **step.diagnostics, "node_id": node_id, m.DONE: step.done}
            if repairs:  # with the first result after the repairs: in result.json, for the driver
                report[REPAIRS_KEY], repairs = repairs, ""
            if step.cosines and (step.done or step.iteration in spec.diagnostics.save_matrix_at):
                report[MATRICES_KEY] = json.dumps(
                    {network: np.round(matrix, 5).tolist() for network, matrix in step.cosines.items()})
            if not step.checkpoint_due:
                tune.report(report)
                continue
            # Mask integrity, checked on every copy of the networks that a checkpoint is about to keep.
            report[m.MAX_MASKED_WEIGHT] = runner.max_masked_weight()
            final = {k: v for k, v in report.items()
                     if isinstance(v, (int, float, str)) and k not in (MATRICES_KEY, REPAIRS_KEY)}
            with tempfile.TemporaryDirectory() as folder:
                runner.save(folder)
                write_manifest(folder, step.iteration, step.done, final)
                tune.report(report, checkpoint=tune.Checkpoint.from_directory(folder))
            persisted = tune.get_checkpoint()  # the copy on the experiment's storage, complete now
            progress.checkpointed(persisted.path, step.iteration, step.done, final)
    finally:
        runner.stop()
