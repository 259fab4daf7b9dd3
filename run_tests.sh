#!/usr/bin/env bash
# Set up .venv (with the test tools) and Chromium (with its WebDriver) for the browser tests, then run the linter and
# the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
scripts/ensure_venv.sh test
if ! { command -v chromium && command -v chromedriver; } >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "revivacolor: installing Debian's chromium and chromium-driver for the browser tests" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } >/dev/null 2>&1 \
    || echo "revivacolor: could not install chromium; the browser tests will be skipped" >&2
fi
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
