"""Dataset loaders for the zoo: MNIST, Fashion-MNIST, EMNIST Balanced, CIFAR-10.

Quick use::

    from zoo.data import get_dataset
    train = get_dataset("cifar10", "train", augment=True)   # root: $ZOO_DATA
    x, y = train[0]                      # float32 (3, 32, 32) normalised, int
    xb, yb = train.get_batch(range(128)) # vectorised batch

Data root: the ``root`` argument, else ``$ZOO_DATA``, else ``~/.cache/zoo/data``.
Nothing is downloaded unless ``download=True`` is passed.
"""

from __future__ import annotations

from zoo.lazy import lazy_names

from .download import DownloadError
from .info import DATASETS, DatasetInfo, dataset_info, matching_dataset
from .paths import cache_root, data_root
from .registry import get_dataset, load_arrays, load_split

# Names whose modules import torch load on first use, so reading the raw
# arrays (e.g. `zoo predict --dataset`, onnxruntime only) works without torch.
__getattr__, __dir__ = lazy_names(__name__, {
    "ImageDataset": "zoo.data.dataset", "normalize": "zoo.data.transforms", "random_crop_flip": "zoo.data.transforms",
})

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "DownloadError",
    "ImageDataset",
    "cache_root",
    "data_root",
    "dataset_info",
    "get_dataset",
    "load_arrays",
    "load_split",
    "matching_dataset",
    "normalize",
    "random_crop_flip",
]
