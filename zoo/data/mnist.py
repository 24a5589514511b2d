"""MNIST and Fashion-MNIST from the official gzip IDX files.

Expected layout (``.gz`` or already-gunzipped files both work)::

    <root>/mnist/                       (or <root>/MNIST/raw/, torchvision's layout)
        train-images-idx3-ubyte.gz      60000 x 28 x 28
        train-labels-idx1-ubyte.gz      60000
        t10k-images-idx3-ubyte.gz       10000 x 28 x 28
        t10k-labels-idx1-ubyte.gz       10000
    <root>/fashion-mnist/               (or <root>/FashionMNIST/raw/), same file names
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .download import download_file
from .idx import read_idx
from .info import dataset_info
from .paths import MISSING_DATA_HINT, find_file
from .validate import check_split

__all__ = ["SUBDIRS", "FILES", "load_mnist_like"]

SUBDIRS = {
    "mnist": ("mnist", "MNIST/raw"),
    "fashion-mnist": ("fashion-mnist", "FashionMNIST/raw"),
}

# split -> (images file, labels file); names without ".gz".
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# (shape, MD5 of the *uncompressed* official file). Checked only when a file has
# the official shape, so re-gzipped copies pass and small test files are skipped.
CANONICAL = {
    "mnist": {
        "train-images-idx3-ubyte": ((60000, 28, 28), "6bbc9ace898e44ae57da46a324031adb"),
        "train-labels-idx1-ubyte": ((60000,), "a25bea736e30d166cdddb491f175f624"),
        "t10k-images-idx3-ubyte": ((10000, 28, 28), "2646ac647ad5339dbf082846283269ea"),
        "t10k-labels-idx1-ubyte": ((10000,), "27ae3e4e09519cfbb04c329615203637"),
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte": ((60000, 28, 28), "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
        "train-labels-idx1-ubyte": ((60000,), "9018921c3c673c538a1fc5bad174d6f9"),
        "t10k-images-idx3-ubyte": ((10000, 28, 28), "8181f5470baa50b63fa0f6fddb340f0a"),
        "t10k-labels-idx1-ubyte": ((10000,), "15d484375f8d13e6eb1aabb0c3f46965"),
    },
}

# Official download locations and MD5s of the .gz files (as in torchvision).
MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}
GZ_MD5 = {
    "mnist": {
        "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}


def _locate(name: str, root: Path, file: str, download: bool) -> Path:
    path = find_file(root, SUBDIRS[name], file)
    if path is not None:
        return path
    dest = root / SUBDIRS[name][0] / (file + ".gz")
    if download:
        urls = [base + file + ".gz" for base in MIRRORS[name]]
        return download_file(urls, dest, GZ_MD5[name][file])
    tried = ", ".join(str(root / sub / (file + "[.gz]")) for sub in SUBDIRS[name])
    raise FileNotFoundError(
        f"{name}: {file}.gz not found (looked for {tried}); "
        + MISSING_DATA_HINT
    )


def load_mnist_like(
    name: str, root: Path, download: bool = False, verify: bool = True
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Load ``'mnist'`` or ``'fashion-mnist'`` from ``root``.

    With ``verify``, files with the official shapes must have the official
    MD5 of their uncompressed content.

    Returns:
        ``{'train': (images, labels), 'test': (images, labels)}`` with uint8
        images of shape ``(N, 1, 28, 28)`` and int64 labels.

    Raises:
        FileNotFoundError: a file is missing (and ``download`` is False).
        ValueError: a file is corrupt; the message names it.
    """
    info = dataset_info(name)
    out = {}
    for split, (image_file, label_file) in FILES.items():
        image_path = _locate(name, root, image_file, download)
        label_path = _locate(name, root, label_file, download)
        canonical = CANONICAL[name] if verify else {}
        images = read_idx(image_path, 3, canonical.get(image_file))
        labels = read_idx(label_path, 1, canonical.get(label_file)).astype(np.int64)
        images = images[:, None]  # add the channel axis
        check_split(images, labels, info, f"{image_path} / {label_path}")
        out[split] = (images, labels)
    return out
