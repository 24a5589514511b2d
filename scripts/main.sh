#!/usr/bin/env bash
# The main job: set up (if needed), train the default model (the MNIST CNN)
# on real data, evaluate its checkpoint on the test set, then export it to ONNX
# and validate the file in onnxruntime against torch on the test set.
# Data: $ZOO_DATA, else ../shared/data beside the checkout. EPOCHS (default 3)
# sets the length; extra arguments go to `zoo train`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export ZOO_DATA="${ZOO_DATA:-$(cd .. && pwd)/shared/data}"
out="runs/main-mnist_cnn-$(date +%Y%m%d-%H%M%S)"
.venv/bin/zoo train mnist_cnn --epochs "${EPOCHS:-3}" --out "$out" "$@"
.venv/bin/zoo eval "$out"
.venv/bin/zoo export "$out/checkpoint.pt" -o "$out/model.onnx"
