"""Compile checks for zoo's hand-written CUDA code in csrc/cuda/.

These run without a GPU: every csrc/cuda/*.cu file must compile with nvcc for sm_90.
The public kernel headers must also stay includable from plain host C++, and the
torch-facing host files (which the CPU-only build never compiles) must pass a syntax
check against the installed torch headers. Each check is skipped with a reason when
its tool is missing.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
CUDA_DIR = ROOT / "csrc" / "cuda"
KERNEL_SOURCES = sorted(CUDA_DIR.glob("*.cu"))
HOST_SOURCES = sorted(CUDA_DIR.glob("*.cpp"))
PUBLIC_HEADERS = sorted(p.name for p in CUDA_DIR.glob("*_kernels.cuh"))
TIMEOUT_S = 300


def _find_nvcc() -> str | None:
    candidates = []
    for var in ("CUDA_HOME", "CUDA_PATH"):
        home = os.environ.get(var)
        if home:
            candidates.append(pathlib.Path(home) / "bin" / "nvcc")
    candidates.append(pathlib.Path("/usr/local/cuda/bin/nvcc"))
    for cand in candidates:
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    return shutil.which("nvcc")


NVCC = _find_nvcc()
NO_NVCC = "nvcc not found (set CUDA_HOME, install /usr/local/cuda, or put nvcc on PATH)"


def _cuda_include_dir() -> pathlib.Path | None:
    if NVCC is None:
        return None
    inc = pathlib.Path(NVCC).resolve().parent.parent / "include"
    return inc if (inc / "cuda_runtime_api.h").is_file() else None


def _host_cxx() -> str | None:
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=CUDA_DIR)


def test_kernel_sources_present():
    names = {p.name for p in KERNEL_SOURCES}
    assert {"batch_norm_kernels.cu", "conv2d_kernels.cu"} <= names, names


@pytest.mark.skipif(NVCC is None, reason=NO_NVCC)
@pytest.mark.parametrize("src", KERNEL_SOURCES, ids=lambda p: p.name)
def test_cuda_kernel_compiles(src: pathlib.Path, tmp_path: pathlib.Path):
    obj = tmp_path / (src.stem + ".o")
    cmd = [NVCC, "-std=c++17", "-arch=sm_90", "-I", str(ROOT / "csrc"), "-c", "-o", str(obj), str(src)]
    proc = _run(cmd)
    assert proc.returncode == 0, f"nvcc failed for {src.name}:\n$ {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}"
    assert obj.is_file() and obj.stat().st_size > 0


@pytest.mark.skipif(NVCC is None, reason=NO_NVCC)
def test_kernel_headers_are_host_includable(tmp_path: pathlib.Path):
    """The launcher headers are included by host-only .cpp files: no device code allowed."""
    cxx = _host_cxx()
    inc = _cuda_include_dir()
    if cxx is None or inc is None:
        pytest.skip("no host C++ compiler or CUDA include directory")
    tu = tmp_path / "headers.cpp"
    tu.write_text("".join(f'#include "{h}"\n' for h in PUBLIC_HEADERS))
    cmd = [cxx, "-std=c++17", "-fsyntax-only", "-I", str(CUDA_DIR), "-I", str(ROOT / "csrc"), "-isystem", str(inc), str(tu)]
    proc = _run(cmd)
    assert proc.returncode == 0, f"$ {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}"


@pytest.mark.skipif(NVCC is None, reason=NO_NVCC)
@pytest.mark.parametrize("src", HOST_SOURCES, ids=lambda p: p.name)
def test_cuda_host_sources_syntax(src: pathlib.Path):
    """Syntax-check the torch-facing host code against the installed torch headers.

    CPU-only torch wheels still ship the c10/cuda headers this code uses;
    C10_CUDA_NO_CMAKE_CONFIGURE_FILE stands in for the CUDA build's generated config.
    """
    cxx = _host_cxx()
    inc = _cuda_include_dir()
    if cxx is None or inc is None:
        pytest.skip("no host C++ compiler or CUDA include directory")
    try:
        from torch.utils.cpp_extension import include_paths
    except Exception as exc:  # pragma: no cover - torch is a hard dependency of zoo
        pytest.skip(f"torch not importable: {exc}")
    torch_incs = include_paths()
    if not any((pathlib.Path(p) / "c10" / "cuda" / "CUDAGuard.h").is_file() for p in torch_incs):
        pytest.skip("installed torch has no c10/cuda headers")
    # csrc/ is an include root in the real build too (for the device-agnostic checks.h and geometry).
    cmd = [cxx, "-std=c++17", "-fsyntax-only", "-DC10_CUDA_NO_CMAKE_CONFIGURE_FILE", "-I", str(CUDA_DIR),
           "-I", str(ROOT / "csrc")]
    for p in torch_incs:
        cmd += ["-isystem", p]
    cmd += ["-isystem", str(inc), str(src)]
    proc = _run(cmd)
    assert proc.returncode == 0, f"$ {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}"
