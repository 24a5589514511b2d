"""Where datasets and decoded-array caches live on disk."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["DEFAULT_DATA_ROOT", "DEFAULT_CACHE_DIR", "MISSING_DATA_HINT", "data_root", "cache_root", "find_file"]

DEFAULT_DATA_ROOT = Path("~/.cache/zoo/data")
DEFAULT_CACHE_DIR = Path("~/.cache/zoo/cache")
# The end of every missing-data message: what a command-line user and a Python user can do.
MISSING_DATA_HINT = ("put the official files there, or point the data root at a folder holding them (zoo commands: "
                     "--data-dir DIR or $ZOO_DATA; Python: root=...); from Python, download=True fetches them")


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """Resolve the data root: ``root``, else ``$ZOO_DATA``, else ``~/.cache/zoo/data``."""
    if root is None:
        root = os.environ.get("ZOO_DATA") or DEFAULT_DATA_ROOT
    return Path(root).expanduser()


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Resolve the decoded-array cache directory.

    ``cache_dir``, else ``$ZOO_CACHE_DIR``, else ``~/.cache/zoo/cache``. The cache
    is kept outside the data root by default because shared data folders are
    often read-only.
    """
    if cache_dir is None:
        cache_dir = os.environ.get("ZOO_CACHE_DIR") or DEFAULT_CACHE_DIR
    return Path(cache_dir).expanduser()


def find_file(root: Path, subdirs: Sequence[str], name: str, allow_gz: bool = True) -> Path | None:
    """Return the first existing ``root/<subdir>/<name>[.gz]``, or ``None``.

    ``name.gz`` is preferred; the uncompressed ``name`` is accepted too because
    torchvision and manual ``gunzip`` leave files that way.
    """
    for sub in subdirs:
        folder = root / sub
        candidates = [folder / (name + ".gz"), folder / name] if allow_gz else [folder / name]
        for path in candidates:
            if path.is_file():
                return path
    return None
