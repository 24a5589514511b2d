"""Packaging: building without torch stops with the commands to run."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_setup_without_torch_says_what_to_run():
    # pip's isolated build env has no torch; simulate it by making `import torch` fail.
    code = "import sys, runpy; sys.modules['torch'] = None; sys.argv = ['setup.py', '--version']; runpy.run_path('setup.py')"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "pip install torch==2.13.0" in result.stderr
    assert "pip install --no-build-isolation -e ." in result.stderr


def test_kernels_are_built_with_torchs_openmp_threads():
    """ATen's parallel_for is inline: compiled without OpenMP, every zoo kernel ran on one thread."""
    import torch

    import zoo

    assert zoo._C.openmp == ("OpenMP" in torch.__config__.parallel_info())
