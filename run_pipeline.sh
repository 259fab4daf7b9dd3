#!/usr/bin/env bash
# Colorize an archive. With no arguments: set up .venv and colorize the bundled samples/
# into output/. With arguments: run the pipeline with them (see README.md or --help).
#
#   ./run_pipeline.sh --input /archive/scans --output /archive/colorized [--model default] [...]
#
# On Dataflow with one GPU per worker (README.md, "Run on Dataflow with GPUs"; the worker
# container is built from ./Dockerfile and must be pushed first):
#
#   ./run_pipeline.sh --runner=DataflowRunner --project=PROJECT --region=us-central1 \
#       --temp_location=gs://BUCKET/tmp --input=gs://BUCKET/scans --output=gs://BUCKET/colorized \
#       --experiments=use_runner_v2 --sdk_container_image=IMAGE --setup_file=./setup.py \
#       --dataflow_service_options="worker_accelerator=type:nvidia-l4;count:1;install-nvidia-driver" \
#       --machine_type=g2-standard-4 \
#       --experiments=no_use_multiple_sdk_containers --number_of_worker_harness_threads=4
#
#   T4 instead of L4: type:nvidia-tesla-t4 with --machine_type=n1-standard-4.
#   no_use_multiple_sdk_containers: one SDK process per worker VM, so one copy of the model on
#   the GPU instead of one per vCPU; the threads of that process share it.
#   Add --dry_run=True to build and print the job without submitting it (no cloud access needed).
#   scripts/dataflow_gpu.sh fills all this in from environment variables.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"  # the checkout; the caller's working directory is kept for --input/--output
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
  sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"  # this usage text; the pipeline's options follow
fi
"$here/scripts/ensure_venv.sh"
if [ "$#" -eq 0 ]; then
  cd "$here"
  set -- --input 'samples/*/**' --output output  # the scans in samples/gray and samples/color, into ./output
fi
exec "$here/.venv/bin/python" -m pipeline "$@"
