"""One driver per study: a lock file in the study's folder, taken before Ray starts.

Why: two drivers of one study share its Tune folder, record and MLflow journal; the second would mark
the first, live sweep as interrupted and close its runs. The lock makes the second driver a one-line
refusal naming the first (PID, host, start time). A lock whose driver is dead is taken over: on the
same host the PID is gone; on any host its heartbeat (the file's modification time, renewed every
``HEARTBEAT_S`` seconds by the live driver) is older than ``STALE_AFTER_S``.

What it guarantees: on a local file system, at most one live driver per study folder (the file is
created with ``O_EXCL``, which is atomic). On NFS (v3 and later) ``O_EXCL`` is atomic too, and a lock
of another host is judged by its heartbeat only. Two drivers that find the same dead lock at the same
moment could both take it over; each re-reads the file after writing and only the one whose token is
there goes on. The study folder is the driver's ``runs/<study>/``: with ``--storage s3://...`` Tune's
trial folders are on S3, but the lock, the record and the journal stay on the driver's file system, so
two drivers on two machines with separate ``runs/`` folders are not stopped by it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path

LOCK_FILE = ".driver.lock"
HEARTBEAT_S = 10.0
STALE_AFTER_S = 60.0


class StudyLockedError(ValueError):
    """Another live driver holds the study (one line: who, since when, and what to do)."""


class StudyLock:
    """The lock of ``folder`` (a study's ``runs/<study>/``); ``acquire`` then ``release``.

    Folders that ``acquire`` had to create are removed again by ``release`` when they are still empty,
    so a sweep refused after taking the lock leaves nothing behind.
    """

    def __init__(self, folder: Path, heartbeat_s: float = HEARTBEAT_S, stale_after_s: float = STALE_AFTER_S):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self.heartbeat_s, self.stale_after_s = heartbeat_s, stale_after_s
        self.token = uuid.uuid4().hex
        self._created: list[Path] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _holder(self) -> dict:
        return {"pid": os.getpid(), "host": socket.gethostname(), "token": self.token,
                "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}

    def acquire(self) -> StudyLock:
        missing = [p for p in [self.folder, *self.folder.parents] if not p.exists()]
        self.folder.mkdir(parents=True, exist_ok=True)
        self._created = list(missing)  # deepest first
        try:
            self._take()
        except BaseException:
            self._remove_created()
            raise
        self._thread = threading.Thread(target=self._beat, name="study-lock-heartbeat", daemon=True)
        self._thread.start()
        return self

    def _take(self) -> None:
        try:
            handle = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = self._read()
            if holder is None and self._age() < 5.0:  # a driver is writing it this very moment
                holder = {"pid": "(being written)", "host": "?", "started": "just now"}
            if holder is not None and self._alive(holder):
                raise StudyLockedError(
                    f"study folder {self.folder} is in use by another driver: PID {holder.get('pid')} on "
                    f"{holder.get('host')}, started {holder.get('started')} ({self.path}); allowed: wait for it "
                    "to end, or stop it and then run with --resume") from None
            self._take_over()
            return
        with os.fdopen(handle, "w") as lock:
            json.dump(self._holder(), lock)

    def _read(self) -> dict | None:
        """The holder, or None for a file that cannot be read as one (a crash while writing it)."""
        try:
            holder = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return holder if isinstance(holder, dict) else None

    def _age(self) -> float:
        """Seconds since the holder's last heartbeat (infinite once the file is gone)."""
        try:
            return time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return float("inf")

    def _alive(self, holder: dict) -> bool:
        if self._age() > self.stale_after_s:
            return False  # no heartbeat: dead, or a PID reused by another process
        if holder.get("host") != socket.gethostname():
            return True  # another host's driver with a fresh heartbeat
        pid = holder.get("pid")
        if not isinstance(pid, int) or pid <= 0:
            return pid == "(being written)"
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def _take_over(self) -> None:
        partial = self.path.with_name(f"{LOCK_FILE}.{self.token}")
        partial.write_text(json.dumps(self._holder()))
        partial.replace(self.path)
        time.sleep(0.05)  # a second driver taking over the same dead lock writes now; the last one wins
        if (self._read() or {}).get("token") != self.token:
            holder = self._read() or {}
            raise StudyLockedError(
                f"study folder {self.folder} was just taken by another driver: PID {holder.get('pid')} on "
                f"{holder.get('host')} ({self.path}); allowed: wait for it to end, or stop it and then run "
                "with --resume")

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if (self._read() or {}).get("token") == self.token:
            self.path.unlink(missing_ok=True)
        self._remove_created()

    def _remove_created(self) -> None:
        for folder in self._created:
            with contextlib.suppress(OSError):  # not empty: the sweep wrote there, keep it
                folder.rmdir()
        self._created = []


def new_stamp(folder: Path) -> str:
    """A ``%Y%m%d-%H%M%S`` stamp that no sweep in ``folder`` (a study's ``runs/<study>/``) has: under the
    lock only drivers that follow each other can meet, and the next second is at most one second away."""
    while True:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        if not any(p.exists() for p in (folder / f"{stamp}.json", folder / f"{stamp}.log", folder / stamp)):
            return stamp
        time.sleep(0.2)
