"""Static facts about each supported dataset (the "dataset info table")."""

from __future__ import annotations

import string
from dataclasses import dataclass

__all__ = ["Augmentation", "DatasetInfo", "DATASETS", "dataset_info", "matching_dataset"]


@dataclass(frozen=True)
class Augmentation:
    """The training-split augmentation that suits a dataset: zero-pad by ``padding``, take a random
    crop of the original size (a shift of up to ``padding`` pixels), and mirror with probability 1/2
    if ``flip`` (see :func:`zoo.data.random_crop_flip`)."""

    padding: int
    flip: bool


@dataclass(frozen=True)
class DatasetInfo:
    """Static description of one dataset.

    Attributes:
        name: registry name, e.g. ``"mnist"``.
        num_classes: number of label values; labels are ``0 .. num_classes-1``.
        in_channels: image channels (1 = grayscale, 3 = RGB).
        image_size: ``(height, width)`` in pixels.
        mean: per-channel mean of the training images on the ``[0, 1]`` scale.
        std: per-channel standard deviation on the ``[0, 1]`` scale.
        classes: human-readable class names, indexed by label.
        val_size: default number of training images held out for validation
            when the format has no official validation split.
        augmentation: what ``augment=True`` does to its training split.
    """

    name: str
    num_classes: int
    in_channels: int
    image_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: tuple[str, ...]
    val_size: int
    augmentation: Augmentation


# EMNIST Balanced merges the lowercase letters that look like their uppercase
# form, leaving 10 digits + 26 uppercase + 11 lowercase = 47 classes.
_EMNIST_BALANCED_CLASSES = tuple(string.digits + string.ascii_uppercase + "abdefghnqrt")

DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        name="mnist",
        num_classes=10,
        in_channels=1,
        image_size=(28, 28),
        mean=(0.1307,),
        std=(0.3081,),
        classes=tuple(string.digits),
        val_size=5_000,
        augmentation=Augmentation(padding=2, flip=False),  # digits are not mirror-symmetric
    ),
    "fashion-mnist": DatasetInfo(
        name="fashion-mnist",
        num_classes=10,
        in_channels=1,
        image_size=(28, 28),
        mean=(0.2860,),
        std=(0.3530,),
        classes=(
            "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
        ),
        val_size=5_000,
        augmentation=Augmentation(padding=2, flip=True),  # a mirrored garment is still the same garment
    ),
    "emnist-balanced": DatasetInfo(
        name="emnist-balanced",
        num_classes=47,
        in_channels=1,
        image_size=(28, 28),
        # Commonly quoted EMNIST Balanced training statistics; not re-measured
        # here because no copy of EMNIST is available offline.
        mean=(0.1751,),
        std=(0.3332,),
        classes=_EMNIST_BALANCED_CLASSES,
        # Same size as the validation split of the emnist-*.npz layout.
        val_size=15_800,
        augmentation=Augmentation(padding=2, flip=False),
    ),
    "cifar10": DatasetInfo(
        name="cifar10",
        num_classes=10,
        in_channels=3,
        image_size=(32, 32),
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.2470, 0.2435, 0.2616),
        classes=(
            "airplane", "automobile", "bird", "cat", "deer",
            "dog", "frog", "horse", "ship", "truck",
        ),
        val_size=5_000,
        augmentation=Augmentation(padding=4, flip=True),  # the standard CIFAR augmentation
    ),
}


def dataset_info(name: str) -> DatasetInfo:
    """Return the :class:`DatasetInfo` for ``name``.

    Raises:
        ValueError: if ``name`` is not a supported dataset.
    """
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(
            f"unknown dataset {name!r}; expected one of {sorted(DATASETS)}"
        ) from None


def matching_dataset(name: str, input_shape: tuple[int, ...], num_classes: int, model: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``name``, if its images are ``input_shape`` ``(C, H, W)`` and it has
    ``num_classes`` classes: the condition for running a model trained on another dataset on it.

    Raises:
        ValueError: unknown name, or the shapes/class counts differ (``model`` describes the model for the message).
    """
    info = dataset_info(name)
    if (info.in_channels, *info.image_size) != tuple(input_shape) or info.num_classes != num_classes:
        raise ValueError(f"{name} images/classes do not match {model} "
                         f"(input {tuple(input_shape)}, {num_classes} classes)")
    return info
