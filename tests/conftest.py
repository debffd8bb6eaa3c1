"""Hermetic test environment: HOME, Ray's temp folder and MLflow paths live in one temp folder.

Set at import time, before any test imports Ray, so Ray, RLlib and MLflow never touch the real home
(``~/.ray/auth_token``, ``~/ray_results``, telemetry files) and subprocesses inherit the same.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

_ROOT = Path(tempfile.mkdtemp(prefix="rllib-sparse-tests-"))
for name in ("home", "ray"):
    (_ROOT / name).mkdir()
os.environ.update({
    "HOME": str(_ROOT / "home"),
    "RAY_TMPDIR": str(_ROOT / "ray"),
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "RAY_USAGE_STATS_ENABLED": "0",
    "PYTHONWARNINGS": "ignore::DeprecationWarning",
})

REPO = Path(__file__).resolve().parent.parent
# Ray workers unpickle helper functions defined in test modules by name: let them import tests/.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "tests"), os.environ.get("PYTHONPATH")]))


def pytest_collection_modifyitems(config, items):
    """Every test that starts Ray is also ``slow``: ``pytest -m "not slow"`` is the quick loop."""
    for item in items:
        if item.get_closest_marker("ray") is not None:
            item.add_marker(pytest.mark.slow)


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_ROOT, ignore_errors=True)


@pytest.fixture(scope="session")
def ray_local():
    """A real local Ray (2 CPUs, no dashboard) shared by the tests that train; stopped at the end."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def run_python(code: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (same venv, same hermetic environment)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO)


def run_cli(*args: str, timeout: float = 600, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Run the installed ``rllib-sparse`` console script."""
    exe = Path(sys.executable).with_name("rllib-sparse")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=timeout, cwd=cwd)
