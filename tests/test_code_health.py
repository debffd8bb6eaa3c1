"""The layer contract and the lint, as CI runs them: a broken contract or a lint error fails the suite.

The contracts (``[tool.importlinter]`` in pyproject.toml): the pure-torch packages import neither Ray
nor the layers above them; ``rllib/`` imports no ``sweep/``, ``report/`` or ``cli/``; ``sweep/``
imports no ``report/`` or ``cli/``; ``report/`` imports no ``cli/``; inside ``rllib/``, ``core/`` imports
no algorithm folder and no algorithm folder imports another.
"""

import subprocess
import sys
from pathlib import Path

from conftest import REPO

BIN = Path(sys.executable).parent


def test_import_contracts_hold():
    run = subprocess.run([str(BIN / "lint-imports"), "--no-cache"], capture_output=True, text=True, cwd=REPO,
                         timeout=300)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "Contracts: 5 kept, 0 broken." in run.stdout


def test_ruff_finds_nothing():
    run = subprocess.run([str(BIN / "ruff"), "check", "--no-cache", "rllib_sparse", "tests", "benchmarks"],
                         capture_output=True, text=True, cwd=REPO, timeout=300)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
