"""Ray's, Tune's, RLlib's and MLflow's own log lines go to a file, so the terminal shows only the sweep's.

Why: a recovered trial makes Tune log a ~40-line traceback, Ray logs its start-up, MLflow and RLlib log
deprecations; mixed into the progress lines they hide what a person needs to see. Nothing is dropped:
the file is named at the end of the sweep. The log starts in a temp file (before the sweep's folder
exists, which is created only once the input has been checked) and is moved next to the sweep's record.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

#: Loggers whose records go to the file instead of the terminal.
_LIBRARIES = ("ray", "mlflow", "alembic", "urllib3", "filelock", "py.warnings", "")


class _LogFile(logging.FileHandler):
    """A log file that cannot be written (a full disk) costs one line on the terminal, not a traceback
    per record (``logging``'s default ``--- Logging error ---`` dump). Every record is still tried:
    once there is room again, the file continues."""

    said = False

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        if not self.said:
            self.said = True
            print(f"note: the log file {self.baseFilename} cannot be written ({sys.exc_info()[1]}); Ray, Tune "
                  "and MLflow log lines are lost while it cannot", file=sys.stderr, flush=True)


class LibraryLogs:
    """While open, library log records (and Python warnings) go to one file, not to the terminal.

    ``echo`` (``sweep --verbose``): they go to the file and stay on the terminal too.
    """

    def __init__(self, echo: bool = False):
        self.echo = echo
        handle, name = tempfile.mkstemp(prefix="rllib-sparse-sweep-", suffix=".log")
        os.close(handle)
        self.path = Path(name)
        self._handler = _LogFile(self.path, mode="a", encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self._saved: list[tuple[logging.Logger, list[logging.Handler], bool, int]] = []
        self._warnings = warnings.showwarning

    def __enter__(self) -> LibraryLogs:
        for name in _LIBRARIES:
            logger = logging.getLogger(name)
            self._saved.append((logger, list(logger.handlers), logger.propagate, logger.level))
            logger.addHandler(self._handler)
            logger.propagate = False
            if name == "":
                logger.setLevel(logging.INFO)
        self.recapture()
        logging.captureWarnings(True)
        return self

    def recapture(self) -> None:
        """Take the terminal handlers off again: ``ray.init`` puts its own back on the ``ray`` logger."""
        if self.echo:
            return
        for name in _LIBRARIES:
            logger = logging.getLogger(name)
            for handler in list(logger.handlers):
                if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                    logger.removeHandler(handler)

    @contextlib.contextmanager
    def native_stderr(self):
        """Send what native code writes to the process's stderr (Ray's C++ GCS client logs every failed
        connection try there, ~20 lines when a token is wrong) to the log file for the duration."""
        if self.echo:
            yield
            return
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            with open(self.path, "ab") as target:
                os.dup2(target.fileno(), 2)
                try:
                    yield
                finally:
                    sys.stderr.flush()
                    os.dup2(saved, 2)
        finally:
            os.close(saved)

    def move_to(self, path: Path) -> None:
        """Continue the log at ``path`` (what was logged so far comes along). An existing ``path`` (the
        log of the sweep that ``--resume`` continues) is appended to, never replaced."""
        self._handler.acquire()
        try:
            self._handler.flush()
            with open(self.path, "rb") as source, open(path, "ab") as target:
                shutil.copyfileobj(source, target)
            self._handler.close()
            self.path.unlink(missing_ok=True)
            self.path = path
            self._handler.baseFilename = os.fspath(path.resolve())
        finally:
            self._handler.release()

    def __exit__(self, *exc) -> None:
        logging.captureWarnings(False)
        for logger, handlers, propagate, level in reversed(self._saved):
            logger.removeHandler(self._handler)
            for handler in handlers:
                if handler not in logger.handlers:
                    logger.addHandler(handler)
            logger.propagate, logger.level = propagate, level
        self._handler.close()

    def discard(self) -> None:
        """Remove the log if it is still our temp file (the sweep never started)."""
        if self.path.parent == Path(tempfile.gettempdir()) and self.path.name.startswith("rllib-sparse-sweep-"):
            self.path.unlink(missing_ok=True)
