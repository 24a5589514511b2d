"""zoo.train.allocator: glibc's malloc told to keep freed blocks, checked in a fresh process each time."""

import os
import subprocess
import sys

import pytest

# Allocate and free a 64 MiB block twice: the second allocation faults its pages in again
# unless the first block stayed in the heap.
PROBE = """
import ctypes, resource, sys
from zoo.train.allocator import keep_freed_memory
applied = keep_freed_memory()
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
def touch_fresh_block():
    p = libc.malloc(64 << 20)
    ctypes.memset(p, 1, 64 << 20)
    libc.free(ctypes.c_void_p(p))
touch_fresh_block()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
touch_fresh_block()
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def probe(env_value: str | None) -> tuple[str, int]:
    env = {} if env_value is None else {"ZOO_KEEP_FREED_MEMORY": env_value}
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env={**os.environ, **env},
                            timeout=60)
    assert result.returncode == 0, result.stderr
    applied, faults = result.stdout.split()
    return applied, int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc settings")
def test_freed_blocks_are_reused_without_page_faults():
    applied, faults = probe(None)
    if applied == "False":
        pytest.skip("not glibc")
    assert faults < 1000  # a fresh 64 MiB block faults in 16384 pages (4 KiB)
    applied, faults = probe("0")
    assert applied == "False" and faults > 10000  # malloc as it is: the block mapped and faulted in again


def test_bad_setting_is_refused(monkeypatch):
    from zoo.train.allocator import keep_freed_memory

    monkeypatch.setenv("ZOO_KEEP_FREED_MEMORY", "yes")
    with pytest.raises(ValueError, match="ZOO_KEEP_FREED_MEMORY must be 0"):
        keep_freed_memory()
