"""Builds zoo: setuptools drives CMake to compile the zoo._C extension.

Install with ``pip install torch==2.13.0`` then ``pip install --no-build-isolation -e .``.
The CMake build directory under ``build/`` is kept, so a rebuild after one edit
recompiles only that file. ``ZOO_WITH_CUDA=0|1`` overrides whether the CUDA
kernels are built (default: when torch has CUDA and nvcc is found);
``ZOO_NATIVE_ARCH=0`` builds the CPU kernels for a generic x86-64 instead of
this machine's CPU; ``ZOO_SANITIZE=1`` builds with AddressSanitizer and
UndefinedBehaviorSanitizer (scripts/sanitize.sh).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

try:
    import torch
except ImportError:
    sys.exit(
        "zoo needs torch installed before it is built, and pip's isolated build env cannot see it.\n"
        "Run:\n    pip install torch==2.13.0\n    pip install --no-build-isolation -e .\n"
    )

ROOT = Path(__file__).parent.resolve()


def env_flag(name: str, default: bool) -> bool:
    """A boolean build setting from the environment (1/on/true/yes or 0/off/false/no)."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "on", "true", "yes")


def want_cuda() -> bool:
    """Whether to compile csrc/cuda: ZOO_WITH_CUDA if set, else torch has CUDA and nvcc exists."""
    if "ZOO_WITH_CUDA" in os.environ:
        return env_flag("ZOO_WITH_CUDA", False)
    cuda_home = os.environ.get("CUDA_HOME", "/usr/local/cuda")
    has_nvcc = shutil.which("nvcc") is not None or Path(cuda_home, "bin", "nvcc").exists()
    return torch.version.cuda is not None and has_nvcc


class CMakeExtension(Extension):
    """An extension whose sources CMakeLists.txt lists."""

    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    """Configures (once) and builds the CMake project, placing the module where setuptools expects it."""

    def build_extension(self, ext: Extension) -> None:
        output = Path(self.get_ext_fullpath(ext.name)).resolve()
        with_cuda = want_cuda()
        sanitize = env_flag("ZOO_SANITIZE", False)
        tag = (f"py{sys.version_info[0]}{sys.version_info[1]}-torch{torch.__version__}"
               f"{'-cuda' if with_cuda else ''}{'-sanitize' if sanitize else ''}")
        build_dir = ROOT / "build" / tag
        args = [
            f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={output.parent}",
            f"-DZOO_WITH_CUDA={'ON' if with_cuda else 'OFF'}",
            f"-DZOO_NATIVE_ARCH={'ON' if env_flag('ZOO_NATIVE_ARCH', True) else 'OFF'}",
            f"-DZOO_SANITIZE={'ON' if sanitize else 'OFF'}",
            "-DCMAKE_BUILD_TYPE=Release",
        ]
        if shutil.which("ninja") and not (build_dir / "CMakeCache.txt").exists():
            args.append("-GNinja")
        if with_cuda:
            cuda_home = os.environ.get("CUDA_HOME", "/usr/local/cuda")
            args.append(f"-DCMAKE_CUDA_COMPILER={shutil.which('nvcc') or Path(cuda_home, 'bin', 'nvcc')}")
        subprocess.check_call(["cmake", "-S", str(ROOT), "-B", str(build_dir), *args])
        subprocess.check_call(["cmake", "--build", str(build_dir), "--parallel", str(os.cpu_count() or 2)])


setup(
    # The top-level export/ stage installs as zoo.export (no generic `export` module in site-packages).
    packages=find_packages(include=["zoo", "zoo.*"]) + ["zoo.export"],
    package_dir={"zoo.export": "export"},
    # The pretrained weights and their manifest install with the package (zoo.create_model(..., pretrained=True)).
    package_data={"zoo.pretrained": ["manifest.json", "weights/*.pt"]},
    ext_modules=[CMakeExtension("zoo._C")],
    cmdclass={"build_ext": CMakeBuild},
)
