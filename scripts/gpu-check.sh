#!/usr/bin/env bash
# The GPU check, in one call: on a machine with an NVIDIA GPU, CUDA torch and
# nvcc (the lent H100/H200 machines), build zoo with its CUDA kernels, run the
# CUDA tests (and again under compute-sanitizer's memcheck where it works),
# and benchmark the kernels and the presets against torch's CUDA layers.
# Everything lands in OUTDIR (at most 8 files: the device tool returns no more):
#   summary.txt    one line per step: ok / FAILED / skipped, with its time
#   env.txt        GPU, driver, torch and nvcc versions
#   build.log, tests.log, memcheck.log
#   kernels.md, models.md   markdown tables for docs/benchmarks.md
# Each step has its own time limit so that the whole run fits in 10 minutes;
# it needs no network. zoo's Python dependencies that the GPU machine's image
# lacks (pydantic, for model arguments) travel as wheels in .whl/, made here with
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
#     pydantic pydantic-core annotated-types typing-inspection
# and named in the device call's `carry`.
#
#   bash scripts/gpu-check.sh OUTDIR
set -uo pipefail
out=${1:?usage: bash scripts/gpu-check.sh OUTDIR}
cd "$(dirname "$0")/.."
mkdir -p "$out"
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
summary="$out/summary.txt"
: > "$summary"
failed=0

# step NAME LIMIT_S LOG COMMAND...: runs COMMAND with a time limit, output to LOG, result to summary.txt.
step() {
  local name=$1 limit=$2 log=$3
  shift 3
  local start=$SECONDS
  if timeout "$limit" "$@" > "$log" 2>&1; then
    echo "ok       $name ($((SECONDS - start)) s)" >> "$summary"
  else
    echo "FAILED   $name (exit $?, $((SECONDS - start)) s; see $(basename "$log"))" >> "$summary"
    failed=1
  fi
}

{
  nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv
  $py -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
  nvcc --version | tail -2
} > "$out/env.txt" 2>&1

if [ -d .whl ] && compgen -G ".whl/*.whl" > /dev/null; then
  $py -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl >> "$out/env.txt" 2>&1 &&
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi

# Build for this GPU's architecture only (e.g. 9.0), in place.
arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d ' ')
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-$arch} ZOO_WITH_CUDA=1 MAX_JOBS=${MAX_JOBS:-16}
step "build (sm ${TORCH_CUDA_ARCH_LIST})" 300 "$out/build.log" \
  $py -m pip install --no-build-isolation --no-deps -e .
if ! $py -c "import zoo, sys; sys.exit(0 if zoo._C.with_cuda else 1)" >> "$out/build.log" 2>&1; then
  echo "FAILED   zoo._C has no CUDA kernels: nothing else can run" >> "$summary"
  cat "$summary"
  exit 1
fi

cuda_tests=(tests/test_cuda.py tests/test_bad_input.py tests/test_sync_bn_ops.py)
step "CUDA tests" 180 "$out/tests.log" $py -m pytest -q -p no:cacheprovider "${cuda_tests[@]}"
if command -v compute-sanitizer > /dev/null; then
  # memcheck slows kernels down many times: the forward/backward comparisons only.
  step "CUDA tests under compute-sanitizer memcheck" 150 "$out/memcheck.log" \
    compute-sanitizer --tool memcheck --error-exitcode 1 \
    $py -m pytest -q -p no:cacheprovider tests/test_cuda.py -k "not gradcheck"
else
  echo "skipped  compute-sanitizer (not installed)" >> "$summary"
fi

step "kernel benchmark" 120 "$out/kernels.md" $py bench/kernels.py --device cuda --markdown
step "model benchmark" 150 "$out/models.md" $py bench/models.py --device cuda --markdown

cat "$summary"
exit $failed
