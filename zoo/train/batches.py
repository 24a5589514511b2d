"""Mini-batches from an in-memory ImageDataset with its vectorised ``get_batch``."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from zoo.data import ImageDataset

__all__ = ["count_batches", "iterate_batches", "eval_batches"]


def count_batches(num_samples: int, batch_size: int, max_batches: int | None = None) -> int:
    """Batches per pass over ``num_samples`` (the last one may be smaller), capped at ``max_batches``."""
    count = math.ceil(num_samples / batch_size)
    return count if max_batches is None else min(count, max_batches)


def iterate_batches(
    dataset: ImageDataset,
    batch_size: int,
    generator: torch.Generator | None = None,
    max_batches: int | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(images, labels)`` batches.

    With a ``generator`` the order is a fresh ``randperm`` drawn from it (and
    augmentation uses it too), so the generator's state alone fixes the data
    order; without one, batches come in dataset order (for evaluation).
    """
    n = len(dataset)
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for index in range(count_batches(n, batch_size, max_batches)):
        yield dataset.get_batch(order[index * batch_size : (index + 1) * batch_size], generator=generator)


def eval_batches(
    dataset: ImageDataset, batch_size: int, max_batches: int | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches for evaluation: the whole split in order, or with ``max_batches`` a fixed random
    subset (files are often sorted by class, so the first batches alone could hold one class)."""
    generator = torch.Generator().manual_seed(0) if max_batches is not None else None
    return iterate_batches(dataset, batch_size, generator, max_batches)
