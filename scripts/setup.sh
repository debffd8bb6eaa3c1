#!/usr/bin/env bash
# Create ./.venv (if missing) and install rllib-sparse with its test tools, CPU torch pinned.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[test]"
