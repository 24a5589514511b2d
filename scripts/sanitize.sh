#!/usr/bin/env bash
# Builds zoo with AddressSanitizer + UndefinedBehaviorSanitizer into its own
# venv (.venv-sanitize) and build directory (build/*-sanitize), then runs the
# kernel, bad-input and fuzz tests under it. Any sanitizer report aborts the
# process that made it, which fails the run (exit non-zero). CI runs this
# after the default suite.
#
#   bash scripts/sanitize.sh              # the tests below
#   bash scripts/sanitize.sh -k conv2d    # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
venv=.venv-sanitize
if [ ! -x $venv/bin/python ]; then
  "${PYTHON:-python3}" -m venv $venv
fi
# torch first and pinned: an unpinned torch pulls GBs of CUDA wheels.
$venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0 setuptools wheel cmake ninja pybind11
# A regular (not editable) install: the sanitized extension lives in this venv only,
# so it never replaces the in-place build that .venv uses.
ZOO_SANITIZE=1 $venv/bin/python -m pip install -q --disable-pip-version-check --no-build-isolation ".[test]"

libasan=$(g++ -print-file-name=libasan.so)
libstdcxx=$(g++ -print-file-name=libstdc++.so)
reports=$(mktemp -d)
# The ASan runtime must come first (python itself is not instrumented), and libstdc++ with it so
# that ASan finds the real __cxa_throw for the exceptions the checks raise.
export LD_PRELOAD="$libasan:$libstdcxx"
# Python and torch keep memory until exit by design: leak reports would be noise.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$reports/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$reports/ubsan"
# The console script (not `python -m`) keeps the source tree off sys.path, so the
# tests import the installed, sanitized zoo.
cd "$root"
status=0
$venv/bin/pytest -q -p no:cacheprovider \
  tests/test_sanitized_build.py tests/test_conv2d.py tests/test_winograd.py tests/test_direct_conv.py tests/test_pointwise_conv.py tests/test_batch_norm.py tests/test_bad_input.py \
  tests/test_drop_in.py tests/test_fuzz.py tests/test_max_pool.py tests/test_dropout.py tests/test_batch_norm_activation.py tests/test_activation.py tests/test_maxout.py tests/test_linear.py "$@" || status=$?
if compgen -G "$reports/*" > /dev/null; then
  echo "sanitizer reports:" >&2
  cat "$reports"/* >&2
  status=1
fi
rm -rf "$reports"
exit $status
