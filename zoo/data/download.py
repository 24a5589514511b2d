"""Explicit (``download=True``) fetching of official files. Never called implicitly."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from zoo.files import atomic_write

__all__ = ["DownloadError", "md5_file", "download_file"]


class DownloadError(RuntimeError):
    """A file could not be fetched (no network, HTTP error, or checksum mismatch)."""


class _ChecksumMismatch(Exception):
    """A downloaded file's MD5 is not the official one."""


def md5_file(path: Path, chunk: int = 1 << 20) -> str:
    """Return the hex MD5 of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def download_file(urls: Sequence[str], dest: Path, md5: str | None, timeout: float = 60.0) -> Path:
    """Fetch the first working URL of ``urls`` into ``dest`` and check its MD5.

    Skips the download if ``dest`` already exists with the right MD5. Writes
    through :func:`zoo.files.atomic_write`, so an interrupted download or a wrong
    checksum never leaves a file at ``dest``.

    Raises:
        DownloadError: if every URL fails or the checksum does not match.
    """
    dest = Path(dest)
    if dest.is_file() and (md5 is None or md5_file(dest) == md5):
        return dest
    errors = []
    for url in urls:
        try:
            with atomic_write(dest) as out:
                digest = hashlib.md5()
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    for block in iter(lambda: response.read(1 << 20), b""):
                        digest.update(block)
                        out.write(block)
                if md5 is not None and digest.hexdigest() != md5:
                    # Raised inside the block, so the wrong file is discarded and dest is untouched.
                    raise _ChecksumMismatch(f"MD5 {digest.hexdigest()} does not match the official {md5}")
        except (urllib.error.URLError, OSError, _ChecksumMismatch) as err:
            errors.append(f"{url}: {err}")
            continue
        return dest
    raise DownloadError(
        f"could not download {dest.name} (no network access?). Tried:\n  "
        + "\n  ".join(errors)
        + f"\nPlace the file at {dest} by hand instead."
    )
