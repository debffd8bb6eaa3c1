"""Damaged files on a sweep's storage: a trial's progress record or checkpoint cut short, garbled or gone.

What can be derived is derived (a progress record is rebuilt from the trial folder and the damaged one
kept aside), a damaged checkpoint is passed over for the previous intact one, and when none is left
the trial fails with one line naming the damaged folders and what to do. The unit tests use a local
pyarrow filesystem and a real streaming-RL runner on Pendulum (no Ray started); one sweep on a real
local Ray damages files between a failed run and its ``--resume``.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
from pathlib import Path

import pyarrow.fs
import pytest
import yaml

from rllib_sparse import metrics as m
from rllib_sparse.sweep.spec import load_sweep
from rllib_sparse.sweep.trainable import (
    DAMAGED_SUFFIX,
    MANIFEST_FILE,
    PROGRESS_FILE,
    REPAIRS_KEY,
    DamagedCheckpointError,
    TrialProgress,
    restore_newest_intact,
    write_manifest,
)
from test_sweep_run import rllib_sparse

#: A streaming trial on Pendulum: builds in a fraction of a second, 50 env steps an iteration.
STREAM = {
    "name": "damage",
    "algorithm": "StreamAC",
    "env": "Pendulum-v1",
    "model": {"name": "layernorm_mlp", "depth": 1, "sparsity": 0.5},
    "grid": {"width": [16]},
    "reporting": {"min_sample_timesteps_per_iteration": 50},
    "stop": {"iterations": 4},
    "checkpoint": {"frequency": 1},
    "failure": {"max_retries": 0},
}


def _stream_file(folder: Path, **changes) -> Path:
    path = folder / "damage.yaml"
    path.write_text(yaml.safe_dump({**STREAM, **changes}))
    return path


def _make_runner(tmp_path: Path, width: int = 16):
    from rllib_sparse.sweep.stream_runner import StreamTrialRunner

    spec = load_sweep(_stream_file(tmp_path, grid={"width": [width]}), [])

    def make():
        return StreamTrialRunner(spec, spec.points()[0])

    return make


def _trial_with_checkpoints(tmp_path: Path, iterations: int = 2) -> tuple[TrialProgress, list[Path]]:
    """A trial folder as ``run_trial`` leaves it: one manifested checkpoint per iteration, and its record."""
    folder = tmp_path / "trial"
    runner = _make_runner(tmp_path)()
    runner.build()
    progress = TrialProgress(pyarrow.fs.LocalFileSystem(), str(folder))
    checkpoints = []
    for index in range(iterations):
        metrics = runner.train()
        checkpoint = folder / f"checkpoint_{index:06d}"
        runner.save(str(checkpoint))
        final = {**metrics, m.DONE: False}
        write_manifest(str(checkpoint), int(metrics[m.ITERATION]), False, final)
        progress.checkpointed(str(checkpoint), int(metrics[m.ITERATION]), False, final)
        checkpoints.append(checkpoint)
    runner.stop()
    return progress, checkpoints


def _reopen(progress: TrialProgress) -> TrialProgress:
    return TrialProgress(pyarrow.fs.LocalFileSystem(), progress.folder)


def test_a_cut_short_progress_file_is_kept_aside_and_rebuilt_from_the_checkpoints(tmp_path, caplog):
    progress, checkpoints = _trial_with_checkpoints(tmp_path)
    path = Path(progress.path)
    os.truncate(path, 10)
    caplog.set_level(logging.WARNING, logger="rllib_sparse.sweep.trainable")
    rebuilt = _reopen(progress)
    assert rebuilt.record["checkpoint"] == str(checkpoints[-1]) and rebuilt.record["iteration"] == 2
    assert not rebuilt.record["done"]
    aside = path.with_name(path.name + DAMAGED_SUFFIX)
    assert len(aside.read_bytes()) == 10  # the evidence, as it was
    assert json.loads(path.read_text())["checkpoint"] == str(checkpoints[-1])  # written back, readable again
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"trial progress file {path} is damaged (JSONDecodeError" in line and f"kept as {aside}" in line
    assert f"newest checkpoint {checkpoints[-1]} (at iteration 2)" in line
    assert rebuilt.repairs == [line]
    path.write_text('{"checkpoint": null}')  # parses, but lacks its keys; the first evidence is not overwritten
    again = _reopen(progress)
    assert again.record["iteration"] == 2 and "no 'iteration' key" in again.repairs[0]
    assert len(aside.read_bytes()) == 10 and Path(f"{aside}.2").read_text() == '{"checkpoint": null}'


def test_a_finished_trial_is_recognised_from_tunes_result_lines_without_manifests(tmp_path):
    """Checkpoints of an older sweep (no manifest): Tune's result.json tells what each one holds."""
    folder = tmp_path / "trial"
    for index in range(3):
        (folder / f"checkpoint_{index:06d}").mkdir(parents=True)
    lines = [json.dumps({"iteration": float(i + 1), "episode_return_mean": -100.0 + i, m.DONE: i == 2,
                         "checkpoint_dir_name": f"checkpoint_{i:06d}", "config": {"index": 0}, "trial_id": "x",
                         "done": False}) for i in range(3)]
    (folder / "result.json").write_text("\n".join(lines) + '\n{"iteration": 4.0, "episo')  # last line cut short
    (folder / PROGRESS_FILE).write_bytes(b"\x00" * 7)
    progress = TrialProgress(pyarrow.fs.LocalFileSystem(), str(folder))
    record = progress.record
    assert record["done"] and record["iteration"] == 3 and record["checkpoint"] == str(folder / "checkpoint_000002")
    assert record["final"]["episode_return_mean"] == -98.0 and record["final"][m.DONE] is True
    assert not {"config", "trial_id", "done", "checkpoint_dir_name"} & set(record["final"])
    assert "(finished)" in progress.repairs[0]


def _damage(file: Path, how: str) -> None:
    if how == "cut short":
        os.truncate(file, 10)
    else:  # one byte flipped: torch.load may well read it; only the manifest's sha256 sees it
        data = bytearray(file.read_bytes())
        data[len(data) // 2] ^= 0xFF
        file.write_bytes(bytes(data))


@pytest.mark.parametrize("how,manifest", [("cut short", True), ("cut short", False), ("byte flipped", True)])
def test_a_damaged_newest_checkpoint_is_passed_over_for_the_previous_intact_one(tmp_path, how, manifest):
    progress, checkpoints = _trial_with_checkpoints(tmp_path)
    _damage(checkpoints[-1] / "stream_trainer.pt", how)
    if not manifest:  # an older sweep's checkpoint: its restore finds the damage
        (checkpoints[-1] / MANIFEST_FILE).unlink()
    progress = _reopen(progress)
    runner = restore_newest_intact(_make_runner(tmp_path), progress)
    try:
        assert runner.iteration == 1 and runner.train()[m.ITERATION] == 2.0
    finally:
        runner.stop()
    assert progress.record["checkpoint"] == str(checkpoints[0]) and progress.record["iteration"] == 1
    assert f"checkpoint {checkpoints[-1]} is damaged (stream_trainer.pt" in progress.repairs[0]
    assert ("has 10 bytes, " if how == "cut short" and manifest else "sha256" if manifest else "PytorchStreamReader") \
        in progress.repairs[0]
    assert progress.repairs[-1] == f"the trial continues from checkpoint {checkpoints[0]} (iteration 1)"
    progress.started("node")
    assert progress.record["attempts"][-1]["from_iteration"] == 1
    assert progress.record["attempts"][-1]["repairs"] == progress.repairs


def test_no_intact_checkpoint_fails_in_one_line_and_deleting_them_retrains_from_the_start(tmp_path):
    progress, checkpoints = _trial_with_checkpoints(tmp_path)
    for checkpoint in checkpoints:
        _damage(checkpoint / "stream_trainer.pt", "cut short")
    with pytest.raises(DamagedCheckpointError) as raised:
        restore_newest_intact(_make_runner(tmp_path), _reopen(progress))
    message = str(raised.value)
    assert "\n" not in message and len(message) < 500, message
    assert message.startswith(f"no intact checkpoint to continue from in {progress.folder}: checkpoint_000001 "
                              "(stream_trainer.pt has 10 bytes, "), message
    assert "), checkpoint_000000 (stream_trainer.pt has 10 bytes, " in message
    assert "damaged; delete those folders to retrain the trial from the start, or put back an intact copy" in message
    for checkpoint in checkpoints:  # what the message says to do
        for file in checkpoint.iterdir():
            file.unlink()
        checkpoint.rmdir()
    progress = _reopen(progress)
    runner = restore_newest_intact(_make_runner(tmp_path), progress)
    try:
        assert runner.iteration == 0
    finally:
        runner.stop()
    assert progress.record["checkpoint"] is None and progress.record["iteration"] == 0


def test_a_record_naming_a_checkpoint_that_is_gone_resumes_from_the_trial_folders_own(tmp_path):
    """E.g. the runs folder was moved: the record's absolute path is gone, the same checkpoint is here."""
    progress, checkpoints = _trial_with_checkpoints(tmp_path)
    elsewhere = f"{tmp_path}/moved-away/trial/checkpoint_000001"
    progress.checkpointed(elsewhere, 2, False, {})
    progress = _reopen(progress)
    runner = restore_newest_intact(_make_runner(tmp_path), progress)
    try:
        assert runner.iteration == 2
    finally:
        runner.stop()
    assert progress.record["checkpoint"] == str(checkpoints[-1])
    assert progress.repairs[0] == f"checkpoint {elsewhere} is gone; trying the next older checkpoint of the trial"


def test_a_restore_error_that_is_not_damage_is_not_passed_over(tmp_path):
    progress, _ = _trial_with_checkpoints(tmp_path)
    with pytest.raises(RuntimeError, match="size mismatch") as raised:  # another width: not a damaged file
        restore_newest_intact(_make_runner(tmp_path, width=32), _reopen(progress))
    assert not isinstance(raised.value, DamagedCheckpointError)


def test_the_rllib_runner_names_a_damaged_checkpoint_and_lets_other_errors_through():
    from rllib_sparse.sweep.rllib_runner import RLlibTrialRunner

    class Algo:
        def __init__(self, error):
            self.error = error

        def restore_from_path(self, folder):
            raise self.error

    runner = RLlibTrialRunner.__new__(RLlibTrialRunner)
    for error in (pickle.UnpicklingError("pickle data was truncated"), EOFError("Ran out of input"),
                  FileNotFoundError("Failed to open local file 'x/learner_group/learner/state.pkl'")):
        runner.algo = Algo(error)
        with pytest.raises(DamagedCheckpointError, match=f"RLlib could not read it: {type(error).__name__}"):
            runner.restore("x")
    runner.algo = Algo(ValueError("the checkpoint's module does not match the config"))
    with pytest.raises(ValueError, match="does not match"):
        runner.restore("x")


def _trial_folders(tmp_path: Path) -> dict[str, Path]:
    return {p.name: p for p in (tmp_path / "runs" / "damage").glob("*/*-seed0")}


@pytest.mark.ray
def test_resume_after_damage_continues_from_the_last_intact_checkpoint_or_fails_in_one_line(tmp_path):
    """Two streaming trials crash after their second checkpoint (no retries: the sweep ends with both
    failed). Then w16's progress record and newest checkpoint are cut short, and both of w32's
    checkpoints; ``--resume`` continues w16 from its first checkpoint and fails w32 in one line."""
    path = _stream_file(tmp_path, grid={"width": [16, 32]}, resources={"cpus_per_trial": 1})
    faults = os.pathsep.join(f"w{w}@3@{tmp_path / f'crashed-w{w}'}" for w in (16, 32))
    first = rllib_sparse(["sweep", str(path), "--num-cpus", "2", "--no-tracking"], cwd=tmp_path,
                         env={"RLLIB_SPARSE_INJECT_FAULT": faults}, timeout=300)
    assert first.returncode == 1, first.stdout[-2000:] + first.stderr[-3000:]
    trials = _trial_folders(tmp_path)
    w16, w32 = (next(p for name, p in trials.items() if f"-w{w}-" in name) for w in (16, 32))
    for trial in (w16, w32):
        assert sorted(c.name for c in trial.glob("checkpoint_*")) == ["checkpoint_000000", "checkpoint_000001"]
    os.truncate(w16 / PROGRESS_FILE, 10)
    os.truncate(w16 / "checkpoint_000001" / "stream_trainer.pt", 10)
    for checkpoint in w32.glob("checkpoint_*"):
        os.truncate(checkpoint / "stream_trainer.pt", 10)

    resumed = rllib_sparse(["sweep", str(path), "--resume", "--num-cpus", "2", "--no-tracking"], cwd=tmp_path,
                           env={"RLLIB_SPARSE_INJECT_FAULT": faults}, timeout=300)
    terminal = resumed.stdout + resumed.stderr
    assert resumed.returncode == 1, terminal[-5000:]
    assert "Traceback" not in terminal
    assert re.search(rf"FAILED trials \(1\): {re.escape(w32.name)}$", resumed.stdout, re.M), resumed.stdout

    # w16: its record rebuilt (the damaged one kept), continued from iteration 1, finished at 4.
    record = json.loads((w16 / PROGRESS_FILE).read_text())
    assert (w16 / f"{PROGRESS_FILE}{DAMAGED_SUFFIX}").stat().st_size == 10
    assert record["done"] and record["iteration"] == 4
    [attempt] = record["attempts"]
    assert attempt["from_iteration"] == 1, attempt
    repairs = "\n".join(attempt["repairs"])
    assert f"trial progress file {w16 / PROGRESS_FILE} is damaged" in repairs
    assert f"checkpoint {w16 / 'checkpoint_000001'} is damaged (stream_trainer.pt has 10 bytes" in repairs
    results = [json.loads(line) for line in (w16 / "result.json").read_text().splitlines()]
    iterations = [r[m.ITERATION] for r in results]
    assert iterations == [1.0, 2.0, 2.0, 3.0, 4.0], iterations  # after the resume: 2, 3, 4 (none from 0)
    assert [r.get(REPAIRS_KEY) for r in results[2:]] == [repairs, None, None]  # on the driver's side too

    # w32: nothing intact; one line naming both folders and what to do, in its error file and the log.
    error_file = next(w32.glob("error.txt"))
    last = [line for line in error_file.read_text().splitlines() if line.strip()][-1]
    assert f"DamagedCheckpointError: no intact checkpoint to continue from in {w32}: checkpoint_000001 (" in last
    assert "), checkpoint_000000 (" in last and "delete those folders to retrain the trial from the start" in last
    [log] = (tmp_path / "runs" / "damage").glob("*.log")
    assert f"no intact checkpoint to continue from in {w32}" in log.read_text()
