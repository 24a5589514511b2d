#!/usr/bin/env bash
# Sets up a fresh clone: a virtual environment in .venv with the pinned CPU
# torch, the build tools, and zoo built in place (editable). Safe to re-run:
# what is already installed is kept, and the CMake build dir makes rebuilds fast.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  "${PYTHON:-python3}" -m venv .venv
fi
. .venv/bin/activate
# torch first and pinned: an unpinned torch pulls GBs of CUDA wheels.
python -m pip install -q --disable-pip-version-check torch==2.13.0 setuptools wheel cmake ninja pybind11
python -m pip install -q --disable-pip-version-check --no-build-isolation -e ".[test]"
