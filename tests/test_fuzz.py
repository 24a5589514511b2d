"""The property-based fuzzers of tests/fuzz_ops.py, each run in its own process.

A crash (segfault, abort, sanitizer report) fails the test with the fuzzer's
output instead of killing the test run. The default suite runs a bounded
budget; ``-m slow`` runs a longer one with other seeds.
"""

import subprocess
import sys
from pathlib import Path

import pytest

FUZZER = Path(__file__).with_name("fuzz_ops.py")


def run_fuzzer(examples: int, seed: int) -> None:
    proc = subprocess.run([sys.executable, str(FUZZER), "--examples", str(examples), "--seed", str(seed)],
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, f"fuzzer exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-8000:]}"


def test_fuzz_ops_against_torch():
    run_fuzzer(examples=300, seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fuzz_ops_against_torch_long(seed):
    run_fuzzer(examples=3000, seed=seed)
