"""Public entry points: find a dataset's files, load arrays, build Datasets."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from . import cache
from .cifar import SUBDIR as CIFAR_PICKLE_DIR
from .cifar import load_cifar10_pickles
from .emnist import load_emnist_balanced
from .image_folder import is_archive, read_image_folder, source_files
from .info import dataset_info
from .mnist import load_mnist_like
from .paths import MISSING_DATA_HINT, cache_root, data_root
from .splits import make_splits, subset_indices

if TYPE_CHECKING:  # the dataset class needs torch; the array loaders here do not
    from .dataset import ImageDataset

__all__ = ["load_arrays", "load_split", "get_dataset", "find_cifar10_image_folder"]

Arrays = dict[str, tuple[np.ndarray, np.ndarray]]
PathLike = str | os.PathLike[str]

CIFAR_JPEG_DIR = "cifar-10-jpeg"


def find_cifar10_image_folder(root: Path) -> Path | None:
    """Return the CIFAR-10 image folder under ``root``, or ``None``.

    Looks for, in order: ``root/cifar-10-jpeg/`` holding ``train/`` and
    ``test/``; ``root/cifar-10-jpeg/cifar-10-jpeg.tar.gz`` (or the only
    ``*.tar.gz``/``*.tgz`` there); ``root/cifar-10-jpeg.tar.gz``.
    """
    folder = root / CIFAR_JPEG_DIR
    if (folder / "train").is_dir() and (folder / "test").is_dir():
        return folder
    named = folder / f"{CIFAR_JPEG_DIR}.tar.gz"
    if named.is_file():
        return named
    archives = sorted(p for p in folder.glob("*") if is_archive(p)) if folder.is_dir() else []
    if len(archives) == 1:
        return archives[0]
    top = root / f"{CIFAR_JPEG_DIR}.tar.gz"
    return top if top.is_file() else None


def _load_image_folder_cached(name: str, source: Path, cache_dir: Path) -> Arrays:
    # JPEG decoding is the one slow step (seconds); cache the decoded arrays.
    info = dataset_info(name)
    key = cache.source_key(source_files(source))
    arrays = cache.load_cached(cache_dir, name, key)
    if arrays is None:
        arrays = read_image_folder(source, info.classes, info.in_channels, info.image_size)
        cache.save_cached(cache_dir, name, key, arrays)
    return arrays


def _load_cifar10(root: Path, download: bool, cache_dir: Path, verify: bool) -> Arrays:
    if (root / CIFAR_PICKLE_DIR).is_dir():
        return load_cifar10_pickles(root, verify=verify)
    source = find_cifar10_image_folder(root)
    if source is not None:
        return _load_image_folder_cached("cifar10", source, cache_dir)
    if download:
        return load_cifar10_pickles(root, download=True, verify=verify)
    raise FileNotFoundError(
        f"cifar10: no data under {root}; expected {root / CIFAR_PICKLE_DIR}/ (official pickles), "
        f"{root / CIFAR_JPEG_DIR}/{{train,test}}/<class>/*.jpg, or "
        f"{root / CIFAR_JPEG_DIR / (CIFAR_JPEG_DIR + '.tar.gz')}; " + MISSING_DATA_HINT
    )


def load_arrays(
    name: str,
    root: PathLike | None = None,
    download: bool = False,
    cache_dir: PathLike | None = None,
    verify: bool = True,
) -> Arrays:
    """Load the official splits of a dataset as numpy arrays.

    Args:
        name: ``'mnist'``, ``'fashion-mnist'``, ``'emnist-balanced'`` or ``'cifar10'``.
        root: data root; default ``$ZOO_DATA``, else ``~/.cache/zoo/data``. Each
            dataset is looked up in its subfolder (see :mod:`zoo.data.mnist`,
            :mod:`zoo.data.emnist`, :mod:`zoo.data.cifar`, and
            :func:`find_cifar10_image_folder`).
        download: fetch missing official files from their official URLs
            (checked by MD5). Never done unless asked.
        cache_dir: where decoded image-folder arrays are cached; default
            ``$ZOO_CACHE_DIR``, else ``~/.cache/zoo/cache``.
        verify: check official MD5s where known: the uncompressed MNIST /
            Fashion-MNIST IDX content and the CIFAR-10 pickles (only for files
            of official size, so re-gzipped copies and small files pass).

    Returns:
        ``{'train': (images, labels), 'test': (images, labels)}``, plus
        ``'val'`` when the format has its own validation split (EMNIST npz).
        Images are uint8 ``(N, C, H, W)``, labels int64 ``(N,)``.

    Raises:
        ValueError: unknown name, or a corrupt file (the message names it).
        FileNotFoundError: the files are missing and ``download`` is False.
        zoo.data.DownloadError: ``download=True`` and fetching failed.
    """
    dataset_info(name)  # validates the name
    root = data_root(root)
    if name in ("mnist", "fashion-mnist"):
        return load_mnist_like(name, root, download, verify)
    if name == "emnist-balanced":
        return load_emnist_balanced(root, download)
    return _load_cifar10(root, download, cache_root(cache_dir), verify)


def load_split(
    name: str,
    split: Literal["train", "val", "test"],
    root: PathLike | None = None,
    val_size: int | None = None,
    seed: int = 0,
    train_size: int | None = None,
    download: bool = False,
    cache_dir: PathLike | None = None,
    verify: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images ``(N, C, H, W)`` and int64 labels ``(N,)`` of one split, with numpy alone.

    The one definition of the splits, shared by :func:`get_dataset` (training and
    evaluation) and torch-free prediction. ``'test'`` is the official test set.
    ``'train'``/``'val'`` come from the format's own validation split when it has
    one (EMNIST npz: 100,000/15,800/15,800), otherwise ``val_size`` images
    (default: 5,000 for MNIST, Fashion-MNIST and CIFAR-10, 15,800 for EMNIST IDX)
    are held out of the official training set by a seeded permutation: the same
    ``seed`` gives the same split. ``val_size=0`` trains on the full official
    training set.

    Args:
        name: dataset name (see :data:`zoo.data.DATASETS`).
        split: ``'train'``, ``'val'`` or ``'test'``.
        root, download, cache_dir, verify: as for :func:`load_arrays`.
        val_size: validation size when carved from train; must be ``None`` for
            layouts with a fixed validation split.
        seed: seed of the train/val permutation.
        train_size: keep a seeded random subset of this many ``'train'`` images
            (reduced-budget runs); ``None`` keeps them all. Ignored for other splits.

    Raises:
        ValueError: bad ``split``/``val_size``, an empty split, or any error from :func:`load_arrays`.
    """
    info = dataset_info(name)
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
    arrays = load_arrays(name, root=root, download=download, cache_dir=cache_dir, verify=verify)
    if split == "test":
        images, labels = arrays["test"]  # independent of val_size/seed
    else:
        images, labels = make_splits(arrays, val_size, info.val_size, seed)[split]
        if split == "train" and train_size is not None:
            keep = subset_indices(len(labels), train_size, seed)
            images, labels = images[keep], labels[keep]
    if len(labels) == 0:
        raise ValueError(f"{name}: the {split!r} split is empty (val_size=0)")
    return images, labels


def get_dataset(
    name: str,
    split: Literal["train", "val", "test"],
    root: PathLike | None = None,
    val_size: int | None = None,
    seed: int = 0,
    augment: bool = False,
    train_size: int | None = None,
    download: bool = False,
    cache_dir: PathLike | None = None,
    verify: bool = True,
) -> ImageDataset:
    """Build an in-memory :class:`ImageDataset` for one split (the split as :func:`load_split` defines it).

    Args:
        name, split, root, val_size, seed, train_size, download, cache_dir, verify: as for :func:`load_split`.
        augment: the dataset's training augmentation (:attr:`DatasetInfo.augmentation`: random
            shifts by zero-padded crops, plus mirroring where it suits the images); ``'train'`` only.

    Returns:
        A Dataset yielding ``(float32 normalised (C, H, W), int label)``.

    Raises:
        ValueError: bad ``split``/``augment``/``val_size`` combination, or any
            error from :func:`load_arrays`.
    """
    info = dataset_info(name)
    if augment and split != "train":
        raise ValueError(f"augment=True is only defined for the 'train' split, not {split!r}")
    images, labels = load_split(name, split, root, val_size, seed, train_size, download, cache_dir, verify)
    from .dataset import ImageDataset

    shift = info.augmentation
    return ImageDataset(images, labels, info.mean, info.std, augment=augment, classes=info.classes,
                        padding=shift.padding, flip=shift.flip)
