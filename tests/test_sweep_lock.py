"""One driver per study: the lock file a sweep takes before Ray starts (real files, real processes)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time

import pytest

from rllib_sparse.sweep.lock import LOCK_FILE, StudyLock, StudyLockedError, new_stamp


def _holder(folder, **fields):
    folder.mkdir(parents=True, exist_ok=True)
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "token": "other", "started": "2026-01-01 00:00:00",
              **fields}
    (folder / LOCK_FILE).write_text(json.dumps(holder))
    return folder / LOCK_FILE


def test_a_live_driver_holds_the_study_and_a_second_is_refused_in_one_line(tmp_path):
    first = StudyLock(tmp_path / "runs" / "tiny").acquire()
    try:
        with pytest.raises(StudyLockedError) as refused:
            StudyLock(tmp_path / "runs" / "tiny").acquire()
        line = str(refused.value)
        assert "\n" not in line and f"PID {os.getpid()} on {socket.gethostname()}, started " in line
        assert "is in use by another driver" in line and "--resume" in line
        assert json.loads(first.path.read_text())["token"] == first.token  # the holder's file untouched
    finally:
        first.release()
    assert not (tmp_path / "runs").exists()  # the folders it had to make, and nothing else, are gone


def test_a_dead_drivers_lock_is_taken_over(tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()  # a PID that no process has now
    path = _holder(tmp_path / "tiny", pid=gone.pid)
    lock = StudyLock(tmp_path / "tiny").acquire()
    assert json.loads(path.read_text())["token"] == lock.token and json.loads(path.read_text())["pid"] == os.getpid()
    lock.release()
    assert not path.exists() and (tmp_path / "tiny").is_dir()  # the folder was there before: kept


def test_another_hosts_lock_counts_while_its_heartbeat_is_fresh(tmp_path):
    path = _holder(tmp_path / "tiny", host="elsewhere", pid=12345)
    with pytest.raises(StudyLockedError, match="PID 12345 on elsewhere"):
        StudyLock(tmp_path / "tiny").acquire()
    old = time.time() - 120
    os.utime(path, (old, old))  # no heartbeat for two minutes: that driver is gone
    lock = StudyLock(tmp_path / "tiny", stale_after_s=60).acquire()
    assert json.loads(path.read_text())["token"] == lock.token
    lock.release()


def test_the_heartbeat_keeps_a_live_lock_fresh_and_a_stale_one_of_a_reused_pid_is_taken(tmp_path):
    lock = StudyLock(tmp_path / "tiny", heartbeat_s=0.1).acquire()
    old = time.time() - 120
    os.utime(lock.path, (old, old))
    time.sleep(0.5)
    assert time.time() - lock.path.stat().st_mtime < 5  # renewed by the holder's heartbeat
    lock.release()
    path = _holder(tmp_path / "tiny")  # this very process's PID (alive), but silent for two minutes
    os.utime(path, (old, old))
    StudyLock(tmp_path / "tiny", stale_after_s=60).acquire().release()


def test_a_damaged_lock_file_is_taken_over_once_it_is_not_being_written(tmp_path):
    (tmp_path / "tiny").mkdir()
    path = tmp_path / "tiny" / LOCK_FILE
    path.write_text('{"pid": 12')  # cut short by a crash
    with pytest.raises(StudyLockedError, match="being written"):
        StudyLock(tmp_path / "tiny").acquire()
    old = time.time() - 30
    os.utime(path, (old, old))
    StudyLock(tmp_path / "tiny").acquire().release()
    assert not path.exists()


def test_stamps_never_repeat_within_a_study(tmp_path):
    first = new_stamp(tmp_path)
    (tmp_path / f"{first}.json").write_text("{}")
    second = new_stamp(tmp_path)
    assert second != first and second > first
