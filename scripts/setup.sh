#!/usr/bin/env bash
# Create ./.venv (if missing) and install rllib-sparse with its test tools, CPU torch pinned.
# --test: also what the test suite needs outside Python: Debian's chromium (the report's browser test),
#         installed with apt-get when it is missing and this runs as root.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[test]"
if [ "${1:-}" = "--test" ] && ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing chromium (apt-get) for the report's browser test..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "warning: chromium is missing and cannot be installed here (needs root and apt-get);" \
         "the report's browser test will fail until 'chromium' is on PATH" >&2
  fi
fi
