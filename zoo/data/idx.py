"""Reader for the IDX format used by MNIST, Fashion-MNIST and EMNIST.

An IDX file is a 4-byte magic number ``00 00 <dtype> <ndim>``, then ``ndim``
big-endian uint32 dimensions, then the row-major data. Only dtype 0x08
(unsigned byte) is used by these datasets, so only that is accepted.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import zlib
from pathlib import Path

import numpy as np

__all__ = ["read_raw", "parse_idx", "read_idx"]

_UBYTE = 0x08


def read_raw(path: Path) -> bytes:
    """Return the uncompressed bytes of ``path`` (gunzipped if it ends in ``.gz``).

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if the gzip stream is corrupt or truncated.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    data = path.read_bytes()
    if path.suffix != ".gz":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as err:
        # EOFError is what gzip raises for a truncated download.
        raise ValueError(f"{path}: corrupt or truncated gzip file ({err})") from err


def parse_idx(data: bytes, path: Path | str, ndim: int) -> np.ndarray:
    """Parse uncompressed IDX bytes into a uint8 array with ``ndim`` dimensions.

    ``path`` is only used in error messages.

    Raises:
        ValueError: on a wrong magic number, a dtype other than ubyte, or a
            size that does not match the dimensions in the header.
    """
    expected_magic = (_UBYTE << 8) | ndim
    if len(data) < 4:
        raise ValueError(f"{path}: too short for an IDX header ({len(data)} bytes)")
    (magic,) = struct.unpack(">I", data[:4])
    if magic != expected_magic:
        raise ValueError(
            f"{path}: wrong IDX magic number 0x{magic:08x}, expected 0x{expected_magic:08x} "
            f"(unsigned bytes, {ndim} dimensions)"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(data)} bytes)")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "has trailing bytes"
        raise ValueError(
            f"{path}: {problem}: header says shape {tuple(dims)} = {expected} bytes, "
            f"file has {len(data)} bytes"
        )
    # Copy so the array is writable and owns its memory (torch.from_numpy warns otherwise).
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims).copy()


def read_idx(path: Path, ndim: int, canonical: tuple[tuple[int, ...], str] | None = None) -> np.ndarray:
    """Read an IDX(.gz) file and check it.

    Args:
        path: file to read; ``.gz`` files are decompressed.
        ndim: expected number of dimensions (3 for images, 1 for labels).
        canonical: optional ``(shape, md5)`` of the official file. When the
            header has exactly that shape, the MD5 of the *uncompressed* bytes
            must match (re-gzipped copies have other gz hashes but the same
            content). Smaller or custom files are only checked structurally.

    Raises:
        FileNotFoundError: if the file is missing.
        ValueError: if the file is corrupt; the message names the file.
    """
    data = read_raw(path)
    array = parse_idx(data, path, ndim)
    if canonical is not None and array.shape == tuple(canonical[0]):
        digest = hashlib.md5(data).hexdigest()
        if digest != canonical[1]:
            raise ValueError(
                f"{path}: uncompressed MD5 {digest} does not match the official {canonical[1]}; "
                "the file is corrupt or not the official release"
            )
    return array
