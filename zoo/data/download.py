"""Explicit (``download=True``) fetching of official files. Never called implicitly."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

__all__ = ["DownloadError", "md5_file", "download_file"]


class DownloadError(RuntimeError):
    """A file could not be fetched (no network, HTTP error, or checksum mismatch)."""


def md5_file(path: Path, chunk: int = 1 << 20) -> str:
    """Return the hex MD5 of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def download_file(urls: Sequence[str], dest: Path, md5: str | None, timeout: float = 60.0) -> Path:
    """Fetch the first working URL of ``urls`` into ``dest`` and check its MD5.

    Skips the download if ``dest`` already exists with the right MD5. Writes to
    ``dest.part`` first so an interrupted download never looks complete.

    Raises:
        DownloadError: if every URL fails or the checksum does not match.
    """
    dest = Path(dest)
    if dest.is_file() and (md5 is None or md5_file(dest) == md5):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    errors = []
    for url in urls:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
        except (urllib.error.URLError, OSError) as err:
            errors.append(f"{url}: {err}")
            continue
        got = md5_file(part)
        if md5 is not None and got != md5:
            errors.append(f"{url}: MD5 {got} does not match the official {md5}")
            continue
        os.replace(part, dest)
        return dest
    part.unlink(missing_ok=True)
    raise DownloadError(
        f"could not download {dest.name} (no network access?). Tried:\n  "
        + "\n  ".join(errors)
        + f"\nPlace the file at {dest} by hand instead."
    )
