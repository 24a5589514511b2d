"""Checking a zip archive (a checkpoint, an npz file) against the CRC-32 of each of its records.

Torch-free (standard library only): the checkpoint loader and the data loaders
verify through the one :func:`zip_damage` before they unpickle or parse anything.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

__all__ = ["one_line", "zip_damage", "zip_without_crcs"]


def one_line(err: Exception) -> str:
    """``Type: message`` of an exception on one line of at most ~200 characters, for user-facing errors."""
    return f"{type(err).__name__}: {' '.join(str(err).split())[:200]}"


def zip_damage(path: str | Path) -> str | None:
    """What is wrong with the zip archive at ``path``, or None when every record reads back with its CRC-32.

    Reads the whole file once; truncation, overwritten bytes and flipped bits in any
    record or in the archive's directory are found.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except Exception as err:  # whatever a damaged archive makes zipfile raise, the file is unreadable
        return f"not a readable zip archive, so truncated, overwritten or another kind of file ({one_line(err)})"
    return None if bad is None else f"its record {bad!r} fails its CRC-32 check"


def zip_without_crcs(path: str | Path) -> bool:
    """True if the archive was written without CRC-32s (all zero), so :func:`zip_damage` cannot verify it."""
    try:
        with zipfile.ZipFile(path) as archive:
            records = [r for r in archive.infolist() if r.file_size]
    except Exception:  # unreadable: zip_damage says why
        return False
    return bool(records) and all(r.CRC == 0 for r in records)
