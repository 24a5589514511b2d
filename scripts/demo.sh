#!/usr/bin/env bash
# The main job: set up (if needed), then run it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m zoo.demo "$@"
