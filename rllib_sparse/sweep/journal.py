"""A durable, ordered outbox: records appended to a journal file, sent one by one by a background thread.

Why its own module: what makes tracking safe against a killed driver, a full disk or a store outage is
the journal's order, acknowledgement and retry rules, and those know nothing of what a record means
or where it goes. The sender gets three callables — ``send`` (apply one record; safe to repeat),
``is_outage`` (whether a failure is the store's, not the record's) and ``reachable`` — and the tracker
(``tracking.SweepTracker``) supplies them.

Files, for a journal ``J.jsonl``: ``J.jsonl`` (one JSON record per line, numbered ``seq``), ``J.acked``
(the last ``seq`` the store took, replaced atomically), ``J.rejected.jsonl`` (records the store refused
as invalid ``MAX_REJECTIONS`` times, with the reason). The journal and its acknowledgement are deleted
only once every record is sent.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

#: Seconds between tries while the store cannot take records (the last value repeats).
RETRY_DELAYS = (0.5, 1, 2, 5)
#: A record the store refuses as invalid this often is set aside (into the rejected-records file).
MAX_REJECTIONS = 3


def first_line(error: BaseException) -> str:
    return next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)


class JournaledSender:
    """Sends records in order, from a journal that outlives the process.

    Before ``start(journal)`` every record is sent at once, in the caller's thread (scripts, tests).
    After it, ``add`` appends to the journal and returns; a background thread sends, retrying while the
    store is out (``outage_since``, ``outage_reason``) and setting aside records the store rejects
    (``rejected``). A journal that cannot be written (a full disk) keeps the records in memory.
    """

    def __init__(self, send: Callable[[dict], None], is_outage: Callable[[BaseException], bool],
                 reachable: Callable[[], bool], store: str, notify: Callable[[str], None]):
        self._send, self._is_outage, self._reachable = send, is_outage, reachable
        self.store = store  # how notes name the store
        self._notify = notify
        self.journal: Path | None = None
        self._seq = 0  # last record number written to the journal
        self._acked = 0  # last record number sent
        self.pending: list[dict] = []
        self._lock = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._give_up_at: float | None = None
        self.outage_since: float | None = None
        self.outage_reason = ""  # the last failure while the store could not take records (one line)
        self.rejected: list[str] = []  # records the store refused as invalid, set aside (one line each)
        self._journal_failed = False

    def add(self, record: dict) -> None:
        if self.journal is None:
            self._send(record)
            return
        with self._lock:
            self._seq += 1
            record = {"seq": self._seq, **record}
            try:
                with self.journal.open("a") as journal:
                    journal.write(json.dumps(record) + "\n")
            except OSError as error:  # a full disk: the record is still sent, from memory
                if not self._journal_failed:
                    self._journal_failed = True
                    self._notify(f"the tracking journal {self.journal} cannot be written ({error.strerror or error}); "
                                 f"records wait in memory until {self.store} takes them")
            self.pending.append(record)
            self._lock.notify_all()

    def start(self, journal: Path) -> int:
        """Journal every later record in ``journal`` and send it from a background thread. Records a
        previous process journaled but never sent are queued first; returns how many there were."""
        self.journal = journal
        self._acked = self._read_acked(journal.with_suffix(".acked"))
        if journal.exists():
            for line in journal.read_text().splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a killed driver was never acknowledged either
                self._seq = max(self._seq, record["seq"])
                if record["seq"] > self._acked:
                    self.pending.append(record)
        unsent = len(self.pending)
        self._thread = threading.Thread(target=self._sender, name="tracking-sender", daemon=True)
        self._thread.start()
        return unsent

    def _read_acked(self, acked_file: Path) -> int:
        """The last record number the store took. A damaged file (a crash, a full disk) costs only time:
        every journaled record is sent again, and ``send`` is safe to repeat."""
        if not acked_file.exists():
            return 0
        text = acked_file.read_text(errors="replace").strip()
        try:
            return int(text or 0)
        except ValueError:
            self._notify(f"note: {acked_file} is damaged ({text[:20]!r}); every record of the journal is sent "
                         "again (a record sent twice changes nothing in the store)")
            return 0

    @property
    def rejected_file(self) -> Path | None:
        """Where records the store refused as invalid are kept (beside the journal), once there is one."""
        return self.journal.with_suffix(".rejected.jsonl") if self.journal is not None else None

    def _set_aside(self, record: dict, error: BaseException) -> None:
        self.rejected.append(f"{record['op']} for {record.get('trial') or 'the sweep'}: {first_line(error)}")
        if self.rejected_file is not None:
            with contextlib.suppress(OSError), self.rejected_file.open("a") as side:
                side.write(json.dumps({"record": record, "error": first_line(error)}) + "\n")

    def _sender(self) -> None:
        while True:
            with self._lock:
                while not self.pending and not self._stopping:
                    self._lock.wait()
                if not self.pending:
                    return
                record = self.pending[0]
            if not self._send_with_retries(record):
                return  # stopping during an outage: the record stays in the journal
            with self._lock:
                self.pending.pop(0)
                self._acked = record["seq"]
                partial = self.journal.with_suffix(".acked.partial")
                partial.write_text(str(self._acked))
                partial.replace(self.journal.with_suffix(".acked"))
                self._lock.notify_all()

    def _send_with_retries(self, record: dict) -> bool:
        """Send one record; True once the store has it (or it was set aside as invalid), False when
        stopping while the store still cannot take it (the record stays in the journal)."""
        rejections, attempt = 0, 0
        while True:
            try:
                self._send(record)
                if self.outage_since is not None:
                    self._notify(f"tracking store {self.store} is back after {time.time() - self.outage_since:.0f} s; "
                                 f"sending {len(self.pending)} buffered record(s)")
                    self.outage_since = None
                return True
            except Exception as error:  # connection errors, server errors, full disk, locked database, bad records
                reachable = self._reachable()
                if reachable and not self._is_outage(error):
                    rejections += 1
                    if rejections >= MAX_REJECTIONS:
                        self._set_aside(record, error)
                        return True
                else:
                    self.outage_reason = first_line(error)
                    if self.outage_since is None:
                        self.outage_since = time.time()
                        state = "cannot be written" if reachable else "is unreachable"
                        self._notify(f"tracking store {self.store} {state}; records are kept in {self.journal} "
                                     f"and sent when it is back ({self.outage_reason[:200]})")
            with self._lock:
                if self._stopping and self._give_up_at is not None and time.time() >= self._give_up_at:
                    return False
                self._lock.wait(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)])
            attempt += 1

    def wait_until_sent(self, timeout: float) -> int:
        """Block until every journaled record is sent, or ``timeout`` seconds; returns how many are left."""
        deadline = time.time() + timeout
        with self._lock:
            while self.pending and time.time() < deadline:
                self._lock.wait(1)
            return len(self.pending)

    def close(self, timeout: float, progress: Callable[[str], None] | None = None) -> int:
        """Send what is pending, waiting up to ``timeout`` seconds for a store that is out; returns how
        many records are still unsent (kept in the journal for the next ``start``)."""
        if self._thread is None:
            return 0
        deadline = time.time() + timeout
        with self._lock:
            self._stopping, self._give_up_at = True, deadline
            self._lock.notify_all()
        last_said = time.time()
        while self._thread.is_alive() and time.time() < deadline + 1:
            self._thread.join(timeout=1)
            if progress is not None and self.outage_since is not None and time.time() - last_said >= 15:
                progress(f"waiting for the tracking store {self.store}: {len(self.pending)} record(s) unsent, "
                         f"giving up in {max(0, deadline - time.time()):.0f} s")
                last_said = time.time()
        unsent = len(self.pending)
        if unsent == 0:  # everything is in the store: the journal has served its purpose
            self.journal.unlink(missing_ok=True)
            self.journal.with_suffix(".acked").unlink(missing_ok=True)
        return unsent
