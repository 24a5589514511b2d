"""CIFAR-10 in the official ``cifar-10-batches-py`` pickle format.

Expected layout::

    <root>/cifar-10-batches-py/
        data_batch_1 .. data_batch_5    each {b'data': uint8 (10000, 3072), b'labels': [int]}
        test_batch                      same, 10000 images
        batches.meta                    {b'label_names': [...]}  (checked if present)

Each 3072-byte row is the red, green and blue 32x32 planes, i.e. CHW order.
Pickles are read with an unpickler that only allows numpy array reconstruction,
so a malicious file cannot run code.
"""

from __future__ import annotations

import hashlib
import pickle
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from .download import download_file
from .info import dataset_info
from .validate import check_split

__all__ = ["SUBDIR", "TRAIN_FILES", "TEST_FILES", "load_cifar10_pickles", "read_batch"]

SUBDIR = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)
META_FILE = "batches.meta"

# MD5s of the official files (as in torchvision). Checked for full-size batches
# (10000 images) only, so small generated files are checked structurally.
OFFICIAL_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
OFFICIAL_BATCH_SIZE = 10_000
ARCHIVE_URLS = ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",)
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # Python 3 pickles of bytes/arrays use it
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as f:
        # latin1/bytes: the official files are Python 2 pickles.
        obj = _ArrayUnpickler(f, encoding="bytes").load()
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a dict, got {type(obj).__name__}")
    # Accept both bytes keys (official) and str keys (re-pickled under Python 3).
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def read_batch(path: Path, verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR batch pickle into uint8 ``(N, 3, 32, 32)`` and int64 ``(N,)``.

    Raises:
        FileNotFoundError: if the file is missing.
        ValueError: if it cannot be unpickled, has the wrong structure, or is a
            full-size official batch whose MD5 does not match.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        batch = _unpickle(path)
    except Exception as err:  # damaged bytes fail in many ways (even LookupError: an altered codec name)
        raise ValueError(f"{path}: not a readable CIFAR batch pickle ({type(err).__name__}: {err})") from err
    if "data" not in batch or "labels" not in batch:
        raise ValueError(f"{path}: missing 'data' or 'labels' (keys: {sorted(batch)})")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch["labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: data has shape {data.shape} dtype {data.dtype}, expected (N, 3072) uint8")
    if labels.ndim != 1 or len(labels) != len(data) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{path}: {len(labels)} labels (dtype {labels.dtype}) for {len(data)} images")
    if verify and path.name in OFFICIAL_MD5 and len(data) == OFFICIAL_BATCH_SIZE:
        digest = hashlib.md5(path.read_bytes()).hexdigest()
        if digest != OFFICIAL_MD5[path.name]:
            raise ValueError(
                f"{path}: MD5 {digest} does not match the official {OFFICIAL_MD5[path.name]}; "
                "the file is corrupt or modified (pass verify=False to accept it)"
            )
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def load_cifar10_pickles(root: Path, download: bool = False, verify: bool = True) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Load ``<root>/cifar-10-batches-py`` (see module docstring).

    Returns:
        ``{'train': (50000 images, labels), 'test': (10000 images, labels)}``
        for the official files; uint8 ``(N, 3, 32, 32)`` and int64 labels.

    Raises:
        FileNotFoundError: a batch file is missing (and ``download`` is False).
        ValueError: a file is corrupt; the message names it.
    """
    info = dataset_info("cifar10")
    folder = root / SUBDIR
    if download and not all((folder / f).is_file() for f in TRAIN_FILES + TEST_FILES):
        archive = download_file(ARCHIVE_URLS, root / "cifar-10-python.tar.gz", ARCHIVE_MD5)
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(root, filter="data")
    meta = folder / META_FILE
    if meta.is_file():
        try:
            names = [n.decode() if isinstance(n, bytes) else n for n in _unpickle(meta)["label_names"]]
        except Exception as err:  # any failure here means the meta file is unusable
            raise ValueError(f"{meta}: not a readable CIFAR meta pickle ({err})") from err
        if tuple(names) != info.classes:
            raise ValueError(f"{meta}: label names {names} differ from the CIFAR-10 classes {list(info.classes)}")
    out = {}
    for split, files in (("train", TRAIN_FILES), ("test", TEST_FILES)):
        parts = [read_batch(folder / f, verify) for f in files]
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        check_split(images, labels, info, f"{folder}/{'{'}{','.join(files)}{'}'}")
        out[split] = (images, labels)
    return out
