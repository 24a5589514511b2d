"""Seeded train/validation splits."""

from __future__ import annotations

import numpy as np

__all__ = ["split_indices", "subset_indices", "make_splits"]

Arrays = dict[str, tuple[np.ndarray, np.ndarray]]


def split_indices(n: int, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n)`` into sorted (train, val) index arrays with ``val_size`` for validation.

    The split is a ``numpy.random.default_rng(seed)`` permutation, so the same
    ``(n, val_size, seed)`` always gives the same split on every platform.

    Raises:
        ValueError: if ``val_size`` is not in ``0 .. n-1``.
    """
    if not 0 <= val_size < n:
        raise ValueError(f"val_size must be in 0..{n - 1} for {n} training samples, got {val_size}")
    perm = np.random.default_rng(seed).permutation(n)
    # Sorted so each subset keeps the source order (better memory locality).
    return np.sort(perm[val_size:]), np.sort(perm[:val_size])


def subset_indices(n: int, size: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded random subset of ``size`` out of ``range(n)`` (reduced-budget training).

    Drawn from its own stream (not the train/val permutation's), so the same
    ``(n, size, seed)`` gives the same subset.

    Raises:
        ValueError: if ``size`` is not in ``1 .. n``.
    """
    if not 1 <= size <= n:
        raise ValueError(f"train_size must be in 1..{n} for {n} training samples, got {size}")
    return np.sort(np.random.default_rng([seed, 1]).permutation(n)[:size])


def make_splits(arrays: Arrays, val_size: int | None, default_val_size: int, seed: int) -> Arrays:
    """Return ``{'train', 'val', 'test'}`` from official ``load_arrays`` output.

    If the format already has a validation split (EMNIST npz) it is used as is
    and ``val_size`` must be ``None``; otherwise ``val_size`` (default
    ``default_val_size``) images are carved out of the official train split.
    ``seed`` only affects that carving.
    """
    if "val" in arrays:
        if val_size is not None:
            raise ValueError("this data layout has a fixed validation split; val_size must be None")
        return {s: arrays[s] for s in ("train", "val", "test")}
    images, labels = arrays["train"]
    train_idx, val_idx = split_indices(len(labels), default_val_size if val_size is None else val_size, seed)
    return {
        "train": (images[train_idx], labels[train_idx]),
        "val": (images[val_idx], labels[val_idx]),
        "test": arrays["test"],
    }
