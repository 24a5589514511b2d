"""Seeding and capturing/restoring every random number generator a run uses."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

__all__ = ["seed_everything", "data_generator", "get_rng_state", "seed_rank_epoch", "set_rng_state"]


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, numpy's global RNG and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def data_generator(seed: int) -> torch.Generator:
    """The generator for data order and augmentation, seeded apart from the global one."""
    # A different seed from torch's global RNG, so shuffling and init draw unrelated streams.
    return torch.Generator().manual_seed(seed + 0x5EED)


def seed_rank_epoch(seed: int, epoch: int, rank: int) -> None:
    """Seed torch's global RNG (dropout) for one rank's epoch of data-parallel training.

    Each rank draws its own masks, and the state at an epoch's start follows from
    (seed, epoch, rank) alone, so a resumed run needs no other rank's RNG state.
    """
    torch.manual_seed(hash((seed, epoch, rank)) & 0x7FFF_FFFF_FFFF_FFFF)


def get_rng_state(generator: torch.Generator) -> dict[str, Any]:
    """Every RNG state, in a form ``torch.load(weights_only=True)`` accepts."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
        "torch": torch.get_rng_state(),
        "data": generator.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    """Restore the states saved by :func:`get_rng_state` (``generator`` gets the data-order state)."""
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    generator.set_state(state["data"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
