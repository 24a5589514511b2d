"""Atomic file writes: a crash or kill never leaves a half-written file behind.

Torch-free (standard library only), so the data loaders, training, studies and
ONNX export all write through the one :func:`atomic_write`.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["atomic_write", "read_json", "write_json", "write_text"]


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path`` for binary writing; on success move it into place.

    The file is flushed to disk and then renamed over ``path`` with ``os.replace``,
    so readers see the old file or the complete new one, never half of one. If
    the ``with`` block raises, the temporary file is removed and ``path`` is left
    as it was. Missing parent directories are created. The temporary name is
    unique, so two processes writing the same path do not collide.

    Example::

        with atomic_write("checkpoint.pt") as f:
            torch.save(state, f)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique name (two processes may write the same path); open() keeps the umask's permissions.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())  # data on disk before the rename makes it visible
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    with atomic_write(path) as f:
        f.write(text.encode())


def write_json(path: str | Path, data: Any, indent: int = 1) -> None:
    """Atomically write ``data`` as indented JSON with a final newline."""
    write_text(path, json.dumps(data, indent=indent) + "\n")


def read_json(path: str | Path) -> Any:
    """Read a JSON file."""
    return json.loads(Path(path).read_text())
