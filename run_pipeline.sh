#!/usr/bin/env bash
# Colorize an archive. With no arguments: set up .venv and run the demo: the gray scans of
# samples/gray colorized into output/gray (the cameraman with the known colors of samples/hints), and the color photos of samples/color colorized
# from their luminance and scored against themselves (--evaluate) into output/color; open
# output/*/report.html. With arguments: run the pipeline with them (see README.md or --help).
#
#   ./run_pipeline.sh --input /archive/scans --output /archive/colorized [--model default] [...]
#   ./run_pipeline.sh studio --input /archive/scans --hints /archive/hints [--output /archive/colorized]
#
# On Dataflow with one GPU per worker: scripts/dataflow_gpu.sh (docs/cloud.md).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"  # the checkout; the caller's working directory is kept for --input/--output
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
  sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"  # this usage text; the pipeline's options follow
fi
"$here/scripts/ensure_venv.sh"
if [ "$#" -eq 0 ]; then
  cd "$here"
  "$here/.venv/bin/python" -m pipeline --input samples/gray --output output/gray --hints samples/hints
  exec "$here/.venv/bin/python" -m pipeline --input samples/color --output output/color --evaluate
fi
if [ "$1" = studio ]; then
  shift
  exec "$here/.venv/bin/python" -m studio "$@"  # the hint studio (docs/hints.md)
fi
exec "$here/.venv/bin/python" -m pipeline "$@"
