#!/usr/bin/env bash
# The test command: set up (if needed), then run the default test suite.
# Extra arguments go to pytest (e.g. `-m slow` for the long checks).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
