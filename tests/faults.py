"""Fault injection for the damage tests: copies of a file truncated, zeroed, or with bits flipped at seeded offsets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np


def damaged_copies(data: bytes, count: int, seed: int = 0) -> Iterator[tuple[str, bytes]]:
    """``(description, damaged bytes)``: empty, then ``count`` each of truncations, zeroed ranges and 1-3 bit flips."""
    rng = np.random.default_rng(seed)
    size = len(data)
    yield "empty", b""
    yield "random bytes", rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    for _ in range(count):
        end = int(rng.integers(0, size))
        yield f"truncated to {end} bytes", data[:end]
    for _ in range(count):
        start = int(rng.integers(0, size))
        length = int(rng.integers(1, 64))
        yield f"zeroed {start}..{start + length}", data[:start] + bytes(min(length, size - start)) + data[start + length:]
    for _ in range(count):
        damaged = bytearray(data)
        offsets = rng.integers(0, size, int(rng.integers(1, 4)))
        for offset in offsets:
            damaged[offset] ^= 1 << int(rng.integers(0, 8))
        yield f"bits flipped at {sorted(int(o) for o in offsets)}", bytes(damaged)


def flip_bit(path: Path, offset: int, bit: int = 0) -> None:
    """Flip one bit of the file at ``path`` in place."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))
