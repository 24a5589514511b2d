"""Consistency checks shared by all loaders."""

from __future__ import annotations

import numpy as np

from .info import DatasetInfo

__all__ = ["check_split"]


def check_split(images: np.ndarray, labels: np.ndarray, info: DatasetInfo, source: str) -> None:
    """Check one split: uint8 ``(N, C, H, W)`` images, int64 ``(N,)`` labels in range.

    ``source`` names the file(s) the split came from, for the error message.

    Raises:
        ValueError: describing the first problem found.
    """
    expected = (info.in_channels, *info.image_size)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != expected:
        raise ValueError(
            f"{source}: images have shape {images.shape} dtype {images.dtype}, "
            f"expected (N, {', '.join(map(str, expected))}) uint8"
        )
    if labels.dtype != np.int64 or labels.ndim != 1:
        raise ValueError(f"{source}: labels have shape {labels.shape} dtype {labels.dtype}, expected (N,) int64")
    if len(images) != len(labels):
        raise ValueError(f"{source}: {len(images)} images but {len(labels)} labels")
    if len(labels) == 0:
        raise ValueError(f"{source}: no samples")
    bad = (labels < 0) | (labels >= info.num_classes)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{source}: label {int(labels[i])} at index {i} is outside 0..{info.num_classes - 1}"
        )
