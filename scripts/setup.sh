#!/usr/bin/env bash
# Create ./.venv (if missing) and install rllib-sparse with its test tools and every simulator extra
# (`.[test,all]`: Atari, DeepMind Control, gymnasium's MuJoCo tasks; the suite runs them all), CPU torch
# pinned (constraints.txt).
# --test: also what the test suite needs outside Python, installed with apt-get when missing and this
#         runs as root: Debian's chromium (the report's browser test) and postgresql (the cluster test's
#         MLflow database; only the server binaries are used, no system service is started).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
bash scripts/install.sh .venv/bin/python -e ".[test,all]"
if [ "${1:-}" = "--test" ]; then
  missing=()
  command -v chromium >/dev/null || missing+=(chromium)
  compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || missing+=(postgresql)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "installing ${missing[*]} (apt-get) for the test suite..."
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
      echo "warning: ${missing[*]} missing and cannot be installed here (needs root and apt-get);" \
           "the tests that need them will fail or be skipped" >&2
    fi
  fi
fi
