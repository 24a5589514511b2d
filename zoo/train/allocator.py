"""Freed memory kept in the process for reuse while training (glibc's malloc).

On Linux with glibc, torch's CPU tensors come from ``malloc``, which maps every
block of 32 MiB or more freshly from the OS and unmaps it again when it is
freed. A training step of the NIN presets allocates and frees dozens of such
blocks (activations and their gradients), and the kernel faults in and zeroes
every page of each one again: ReLU's backward on a 128 x 160 x 32 x 32 tensor
took 79 ms instead of a few, and with the blocks kept torch's own NIN steps ran
1.5-2.7x faster (docs/benchmarks.md). :func:`keep_freed_memory` has malloc serve
every block from its heap (``M_MMAP_MAX`` = 0) and keep the heap's free top
(``M_TRIM_THRESHOLD`` at its maximum), so freed blocks are reused: the process
keeps its peak memory between steps, as a GPU's caching allocator does.
:func:`zoo.train.fit` calls it; ``ZOO_KEEP_FREED_MEMORY=0`` leaves malloc as it is.
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["ENV_VAR", "keep_freed_memory"]

ENV_VAR = "ZOO_KEEP_FREED_MEMORY"

# mallopt parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1


def keep_freed_memory() -> bool:
    """Make glibc's malloc reuse freed large blocks instead of returning them to the OS; True if it now does.

    False (nothing changed) when ``ZOO_KEEP_FREED_MEMORY=0``, off Linux, or
    where the C library is not glibc. Applies to the whole process from the
    call on; blocks mapped before it are unmapped when freed, as before.

    Raises:
        ValueError: ``ZOO_KEEP_FREED_MEMORY`` is set to something other than 0 or 1.
    """
    setting = os.environ.get(ENV_VAR, "1")
    if setting not in ("0", "1"):
        raise ValueError(f"{ENV_VAR} must be 0 (leave malloc as it is) or 1 (keep freed memory), got {setting!r}")
    if setting == "0" or not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None)
    if not hasattr(libc, "gnu_get_libc_version"):  # musl and others: their malloc has other settings
        return False
    return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, _INT_MAX))
