#!/usr/bin/env bash
# Colorize an archive. With no arguments: set up .venv and colorize the bundled samples/
# into output/. With arguments: run the pipeline with them (see README.md or --help).
set -euo pipefail
cd "$(dirname "$0")"
scripts/ensure_venv.sh
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
if [ "$#" -eq 0 ]; then
  set -- --input 'samples/*/**' --output output  # the scans in samples/gray and samples/color
fi
exec .venv/bin/python -m pipeline "$@"
