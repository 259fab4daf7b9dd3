#!/usr/bin/env bash
# Launch RevivaColor on Dataflow with one GPU per worker, through ./run_pipeline.sh.
#
#   PROJECT=my-project BUCKET=my-bucket \
#   IMAGE=us-central1-docker.pkg.dev/my-project/revivacolor/worker:0.1.0 \
#   scripts/dataflow_gpu.sh --input=gs://my-bucket/scans --output=gs://my-bucket/colorized [options]
#
# Optional: REGION (us-central1), GPU (l4: nvidia-l4 on g2-standard-4, the default; t4:
# nvidia-tesla-t4 on n1-standard-4), MACHINE_TYPE (overrides the GPU's), THREADS (worker harness
# threads in each of the VM's SDK processes, one process per vCPU, 2), COPIES (--model_copies: models
# on the VM's GPU, shared by all its processes, 1). Any other Beam option goes after the arguments, for
# example --max_num_workers=4, or --dry_run=True to print the job without submitting it.
set -euo pipefail
: "${PROJECT:?set PROJECT to the Google Cloud project}" "${BUCKET:?set BUCKET for temporary files}"
: "${IMAGE:?set IMAGE to the pushed worker container (see Dockerfile)}"
case "${GPU:-l4}" in
  l4) accelerator=nvidia-l4 machine_type=g2-standard-4 ;;
  t4) accelerator=nvidia-tesla-t4 machine_type=n1-standard-4 ;;
  *) echo "dataflow_gpu.sh: GPU must be l4 or t4, not ${GPU}" >&2; exit 2 ;;
esac
exec "$(dirname "$0")/../run_pipeline.sh" --runner=DataflowRunner --project="$PROJECT" \
  --region="${REGION:-us-central1}" --temp_location="gs://$BUCKET/tmp" \
  --experiments=use_runner_v2 --sdk_container_image="$IMAGE" --setup_file=./setup.py \
  --dataflow_service_options="worker_accelerator=type:$accelerator;count:1;install-nvidia-driver" \
  --machine_type="${MACHINE_TYPE:-$machine_type}" \
  --number_of_worker_harness_threads="${THREADS:-2}" --model_copies="${COPIES:-1}" "$@"
