#!/usr/bin/env bash
# Set up .venv (with the test tools) and run the linter and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")"
scripts/ensure_venv.sh test
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
