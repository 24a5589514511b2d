#!/usr/bin/env bash
# The main job: set up (if needed), train the default model (mnist_cnn_32_64,
# the MNIST CNN that reaches 99%) on real data with its recipe (5 epochs),
# evaluate its checkpoint on the test set, then export it to ONNX and validate
# the file in onnxruntime against torch on the test set.
# Data: $ZOO_DATA, else ../shared/data beside the checkout. EPOCHS overrides the
# recipe's length; MODEL picks another preset; extra arguments go to `zoo train`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export ZOO_DATA="${ZOO_DATA:-$(cd .. && pwd)/shared/data}"
model="${MODEL:-mnist_cnn_32_64}"
out="runs/main-$model-$(date +%Y%m%d-%H%M%S)"
.venv/bin/zoo train "$model" ${EPOCHS:+--epochs "$EPOCHS"} --out "$out" "$@"
.venv/bin/zoo eval "$out"
.venv/bin/zoo export "$out/checkpoint.pt" -o "$out/model.onnx"
