"""EMNIST Balanced (47 classes) from either of its two common layouts.

Layout 1, the official gzip IDX release (validation is carved from train later)::

    <root>/emnist/                      (or <root>/EMNIST/raw/ or <root>/emnist/gzip/)
        emnist-balanced-train-images-idx3-ubyte.gz    112800 x 28 x 28
        emnist-balanced-train-labels-idx1-ubyte.gz    112800
        emnist-balanced-test-images-idx3-ubyte.gz      18800 x 28 x 28
        emnist-balanced-test-labels-idx1-ubyte.gz      18800

  The IDX images are stored transposed (column-major per image), so they are
  transposed back here to read upright.

Layout 2, the npz re-split with its own validation set (used if present)::

    <root>/emnist/
        emnist-train.npz   inputs (100000, 784), targets (100000,)
        emnist-valid.npz   inputs (15800, 784),  targets (15800,)
        emnist-test.npz    inputs (15800, 784),  targets (15800,)

  ``inputs`` are flattened row-major (already upright) and either uint8
  0..255 or floats (in [0, 1], or 0..255 if any value exceeds 1).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from zoo.archives import zip_damage

from .download import download_file
from .idx import read_idx
from .info import dataset_info
from .paths import MISSING_DATA_HINT, find_file
from .validate import check_split

__all__ = ["SUBDIRS", "IDX_FILES", "NPZ_FILES", "load_emnist_balanced", "load_emnist_npz", "load_emnist_idx"]

SUBDIRS = ("emnist", "EMNIST/raw", "emnist/gzip")
IDX_FILES = {
    "train": ("emnist-balanced-train-images-idx3-ubyte", "emnist-balanced-train-labels-idx1-ubyte"),
    "test": ("emnist-balanced-test-images-idx3-ubyte", "emnist-balanced-test-labels-idx1-ubyte"),
}
# split name used by zoo -> npz file
NPZ_FILES = {"train": "emnist-train.npz", "val": "emnist-valid.npz", "test": "emnist-test.npz"}

# Official archive with all EMNIST splits (as in torchvision); ~560 MB.
ZIP_URLS = ("https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip",)
ZIP_MD5 = "58c8d27c78d21e728a6bc7b3cc06412e"


def load_emnist_balanced(root: Path, download: bool = False) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Load EMNIST Balanced from ``root``: npz layout if present, else IDX.

    Returns:
        ``{'train', 'val', 'test'}`` for the npz layout, ``{'train', 'test'}``
        for IDX; uint8 images ``(N, 1, 28, 28)`` upright, int64 labels 0..46.

    Raises:
        FileNotFoundError: nothing usable found (and ``download`` is False).
        ValueError: a file is corrupt; the message names it.
    """
    npz_dir = root / SUBDIRS[0]
    if (npz_dir / NPZ_FILES["train"]).is_file():
        return load_emnist_npz(npz_dir)
    return load_emnist_idx(root, download)


def load_emnist_idx(root: Path, download: bool = False) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Load the official EMNIST Balanced gzip IDX files (see module docstring)."""
    info = dataset_info("emnist-balanced")
    out = {}
    for split, (image_file, label_file) in IDX_FILES.items():
        image_path = _locate(root, image_file, download)
        label_path = _locate(root, label_file, download)
        images = read_idx(image_path, 3)
        labels = read_idx(label_path, 1).astype(np.int64)
        # EMNIST stores each image transposed relative to MNIST.
        images = np.ascontiguousarray(images.transpose(0, 2, 1))[:, None]
        check_split(images, labels, info, f"{image_path} / {label_path}")
        out[split] = (images, labels)
    return out


def load_emnist_npz(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Load ``emnist-{train,valid,test}.npz`` from ``folder`` (see module docstring)."""
    info = dataset_info("emnist-balanced")
    out = {}
    for split, file in NPZ_FILES.items():
        path = folder / file
        if not path.is_file():
            raise FileNotFoundError(f"{path}: file not found (the npz layout needs {sorted(NPZ_FILES.values())})")
        damage = zip_damage(path)  # before numpy parses a possibly damaged header
        if damage is not None:
            raise ValueError(f"{path}: damaged npz file: {damage}")
        try:
            with np.load(path, allow_pickle=False) as npz:
                inputs, targets = npz["inputs"], npz["targets"]
        except KeyError as err:
            raise ValueError(f"{path}: missing array {err}; expected 'inputs' and 'targets'") from err
        except (OSError, ValueError, zipfile.BadZipFile) as err:
            raise ValueError(f"{path}: cannot read npz file ({err})") from err
        images = _to_uint8_images(inputs, path, info.image_size)
        if targets.ndim != 1 or not np.issubdtype(targets.dtype, np.integer):
            raise ValueError(f"{path}: targets have shape {targets.shape} dtype {targets.dtype}, expected (N,) integers")
        labels = targets.astype(np.int64)
        check_split(images, labels, info, str(path))
        out[split] = (images, labels)
    return out


def _to_uint8_images(inputs: np.ndarray, path: Path, size: tuple[int, int]) -> np.ndarray:
    """Convert flattened uint8 or float inputs to uint8 ``(N, 1, H, W)``."""
    pixels = size[0] * size[1]
    if inputs.ndim < 2 or int(np.prod(inputs.shape[1:])) != pixels:
        raise ValueError(f"{path}: inputs have shape {inputs.shape}, expected (N, {pixels})")
    if np.issubdtype(inputs.dtype, np.floating):
        if not np.isfinite(inputs).all():
            raise ValueError(f"{path}: inputs contain NaN or inf")
        scale = 255.0 if inputs.size and inputs.max() <= 1.0 else 1.0
        values = np.rint(inputs * scale)
    elif np.issubdtype(inputs.dtype, np.integer):
        values = inputs
    else:
        raise ValueError(f"{path}: inputs have unsupported dtype {inputs.dtype}")
    if values.size and (values.min() < 0 or values.max() > 255):
        raise ValueError(f"{path}: pixel values outside 0..255 (min {values.min()}, max {values.max()})")
    # Row-major flattening: already upright, no EMNIST transpose needed here.
    return values.astype(np.uint8).reshape(len(inputs), 1, *size)


def _locate(root: Path, file: str, download: bool) -> Path:
    path = find_file(root, SUBDIRS, file)
    if path is not None:
        return path
    if download:
        _download_balanced(root / SUBDIRS[0])
        path = find_file(root, SUBDIRS, file)
        if path is not None:
            return path
    tried = ", ".join(str(root / sub / (file + "[.gz]")) for sub in SUBDIRS)
    raise FileNotFoundError(
        f"emnist-balanced: {file}.gz not found (looked for {tried}; the npz layout "
        f"{root / SUBDIRS[0] / NPZ_FILES['train']} is missing too); "
        + MISSING_DATA_HINT
    )


def _download_balanced(folder: Path) -> None:
    """Fetch the official EMNIST zip and extract only the Balanced IDX files."""
    archive = download_file(ZIP_URLS, folder / "gzip.zip", ZIP_MD5)
    wanted = {f"gzip/{name}.gz" for pair in IDX_FILES.values() for name in pair}
    with zipfile.ZipFile(archive) as zf:
        for member in wanted:
            (folder / Path(member).name).write_bytes(zf.read(member))
