#!/usr/bin/env bash
# The one install command of rllib-sparse, with the pins of constraints.txt:
#   scripts/install.sh PYTHON PIP_TARGET...
# scripts/setup.sh runs it for ./.venv (`-e ".[test,all]"`, what .ci/run exercises); docker/Dockerfile runs
# it for the image's Python (`".[cluster,all]"`). Extra indexes (a CPU or CUDA torch build) come from
# PIP_EXTRA_INDEX_URL.
set -euo pipefail
cd "$(dirname "$0")/.."
python="$1"
shift
"$python" -m pip install --quiet --disable-pip-version-check -c constraints.txt "$@"
