"""Image-folder layout, as a directory or packed in a .tar.gz archive.

Expected layout (inside the archive any leading folders are ignored)::

    <folder or archive>/
        train/<class name>/*.jpg|*.jpeg|*.png
        test/<class name>/*.jpg|*.jpeg|*.png

Images are sorted by (split, class, file name), so the result does not depend
on archive order. Decoding uses Pillow; with more than ``_CHUNK`` images it is
spread over worker processes (Pillow decoding of tiny images is Python-bound,
so threads do not help) and overlapped with reading the archive.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import sys
import tarfile
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

__all__ = ["IMAGE_EXTENSIONS", "SPLITS", "is_archive", "source_files", "read_image_folder"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
SPLITS = ("train", "test")
_CHUNK = 2048  # images per decode task; small inputs are decoded in-process

Arrays = dict[str, tuple[np.ndarray, np.ndarray]]


def is_archive(path: Path) -> bool:
    """True for ``.tar.gz`` / ``.tgz`` / ``.tar`` files."""
    name = path.name.lower()
    return path.is_file() and name.endswith((".tar.gz", ".tgz", ".tar"))


def source_files(source: Path) -> list[Path]:
    """The files whose size/mtime identify ``source`` (for the decode cache key)."""
    if is_archive(source):
        return [source]
    return [p for split in SPLITS for p in sorted((source / split).glob("*/*")) if _is_image(p.name)]


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")


def _iter_directory(source: Path) -> Iterator[tuple[str, str, str, bytes]]:
    for split in SPLITS:
        folder = source / split
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: split folder not found (expected {source}/{{train,test}}/<class>/*.jpg)")
        for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            for path in sorted(class_dir.iterdir()):
                if path.is_file() and _is_image(path.name):
                    yield split, class_dir.name, str(path), path.read_bytes()


def _iter_archive(source: Path) -> Iterator[tuple[str, str, str, bytes]]:
    try:
        with tarfile.open(source, "r:*") as tar:
            for member in tar:
                parts = PurePosixPath(member.name).parts
                if not member.isfile() or len(parts) < 3 or parts[-3] not in SPLITS or not _is_image(parts[-1]):
                    continue
                data = tar.extractfile(member).read()
                yield parts[-3], parts[-2], f"{source}:{member.name}", data
            # tarfile stops at the end-of-archive blocks; read on to the end so gzip checks its CRC-32.
            while tar.fileobj.read(1 << 20):
                pass
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        raise ValueError(f"{source}: corrupt or truncated archive ({type(err).__name__}: {err})") from err


def _decode_one(data: bytes, mode: str) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert(mode))


def _decode_chunk(items: list[tuple[str, bytes]], mode: str, size: tuple[int, int]) -> np.ndarray:
    """Decode ``(name, bytes)`` pairs into uint8 ``(n, H, W, C)``; errors name the image."""
    out = np.empty((len(items), *size, len(mode)), dtype=np.uint8)
    for i, (name, data) in enumerate(items):
        try:
            pixels = _decode_one(data, mode)
        except Exception as err:  # Pillow raises many types for bad data
            raise ValueError(f"{name}: cannot decode image ({type(err).__name__}: {err})") from None
        if pixels.shape[:2] != tuple(size):
            raise ValueError(f"{name}: image is {pixels.shape[1]}x{pixels.shape[0]}, expected {size[1]}x{size[0]}")
        out[i] = pixels.reshape(*size, len(mode))
    return out


def _make_pool(workers: int) -> Executor:
    # fork: workers inherit the loaded modules, and scripts without a
    # __main__ guard keep working (spawn/forkserver would re-import them).
    context = multiprocessing.get_context("fork") if sys.platform.startswith("linux") else None
    return ProcessPoolExecutor(workers, mp_context=context)


def read_image_folder(
    source: Path,
    classes: Sequence[str] | None,
    channels: int,
    size: tuple[int, int],
    workers: int | None = None,
) -> Arrays:
    """Decode an image folder (directory or archive) into arrays.

    Args:
        source: the folder holding ``train/`` and ``test/``, or an archive of it.
        classes: class names in label order; a class folder not in this list is
            an error. ``None`` uses the sorted folder names under ``train/``.
        channels: 1 (decoded as grayscale) or 3 (RGB).
        size: required ``(height, width)`` of every image.
        workers: decode processes (default: CPU count); 1 decodes in-process.

    Returns:
        ``{'train': (images, labels), 'test': (images, labels)}``, uint8
        ``(N, C, H, W)`` and int64.

    Raises:
        FileNotFoundError: ``source`` or a split folder is missing.
        ValueError: corrupt archive, undecodable or wrongly sized image,
            unknown class folder, or an empty split; the message names it.
    """
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"{source}: not found")
    mode = {1: "L", 3: "RGB"}[channels]
    workers = workers or os.cpu_count() or 1
    entries = _iter_archive(source) if is_archive(source) else _iter_directory(source)

    keys: list[tuple[str, str, str]] = []
    parts: list[np.ndarray | Future] = []
    pending: list[tuple[str, bytes]] = []
    pool = None
    try:
        for split, class_name, name, data in entries:
            keys.append((split, class_name, name))
            pending.append((name, data))
            if len(pending) == _CHUNK:
                if workers > 1 and pool is None:
                    pool = _make_pool(workers)
                # Submit while the archive is still being read, to overlap I/O and decoding.
                parts.append(pool.submit(_decode_chunk, pending, mode, size) if pool else _decode_chunk(pending, mode, size))
                pending = []
        if pending:
            parts.append(_decode_chunk(pending, mode, size))
        decoded = [p.result() if isinstance(p, Future) else p for p in parts]
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)

    if classes is None:
        classes = sorted({c for s, c, _ in keys if s == "train"})
    class_index = {c: i for i, c in enumerate(classes)}
    for split, class_name, name in keys:
        if class_name not in class_index:
            raise ValueError(f"{name}: unknown class folder {split}/{class_name!r}; expected one of {list(classes)}")

    images = np.concatenate(decoded) if decoded else np.empty((0, *size, channels), np.uint8)
    labels = np.array([class_index[c] for _, c, _ in keys], dtype=np.int64)
    # Deterministic order regardless of how the archive was written.
    order = sorted(range(len(keys)), key=lambda i: (keys[i][0], labels[i], keys[i][2]))
    out = {}
    for split in SPLITS:
        idx = np.array([i for i in order if keys[i][0] == split], dtype=np.int64)
        if len(idx) == 0:
            raise ValueError(f"{source}: no images under {split}/<class>/ (extensions {IMAGE_EXTENSIONS})")
        out[split] = (np.ascontiguousarray(images[idx].transpose(0, 3, 1, 2)), labels[idx])
    return out
