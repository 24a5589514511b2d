"""On-disk cache of decoded arrays, so JPEGs are decoded once, not every run.

A cache entry is one uncompressed ``.npz`` file named after the dataset and a
key derived from the source files' absolute paths, sizes and mtimes: replacing
or touching a source file changes the key, so a stale entry is never used.
"""

from __future__ import annotations

import hashlib
import warnings
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from zoo.files import atomic_write

__all__ = ["source_key", "load_cached", "save_cached"]

# Bump when the decoded layout changes, to invalidate old entries.
CACHE_VERSION = 1

Arrays = dict[str, tuple[np.ndarray, np.ndarray]]


def source_key(files: Iterable[Path]) -> str:
    """Hash of (absolute path, size, mtime_ns) of every file, order-independent."""
    digest = hashlib.sha256(f"v{CACHE_VERSION}".encode())
    for path in sorted(Path(f).resolve() for f in files):
        st = path.stat()
        digest.update(f"{path}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def _entry(cache_dir: Path, tag: str, key: str) -> Path:
    return cache_dir / f"{tag}-{key}.npz"


def load_cached(cache_dir: Path, tag: str, key: str) -> Arrays | None:
    """Return the cached arrays for ``(tag, key)``, or ``None`` if absent or unreadable."""
    path = _entry(cache_dir, tag, key)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = {name.rsplit("_", 1)[0] for name in npz.files}
            # Same split order as a fresh load: train, val, test.
            splits = [s for s in ("train", "val", "test") if s in names]
            return {s: (npz[f"{s}_images"], npz[f"{s}_labels"]) for s in splits}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        # A damaged entry is just a cache miss; it gets rewritten.
        return None


def save_cached(cache_dir: Path, tag: str, key: str, arrays: Arrays) -> Path | None:
    """Write ``arrays`` atomically; warn and return ``None`` if the directory is not writable."""
    path = _entry(cache_dir, tag, key)
    payload = {}
    for split, (images, labels) in arrays.items():
        payload[f"{split}_images"] = images
        payload[f"{split}_labels"] = labels
    try:
        with atomic_write(path) as f:  # readers never see a half-written file
            np.savez(f, **payload)
    except OSError as err:
        warnings.warn(f"could not write decoded-array cache {path}: {err}", stacklevel=3)
        return None
    return path
