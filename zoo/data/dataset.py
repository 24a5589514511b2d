"""In-memory image classification dataset backed by one uint8 tensor."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .transforms import normalize, random_crop_flip

__all__ = ["ImageDataset"]


class ImageDataset(Dataset):
    """All images of one split in a single uint8 ``(N, C, H, W)`` tensor.

    ``dataset[i]`` returns ``(float32 normalised (C, H, W) tensor, int label)``,
    so it works with :class:`torch.utils.data.DataLoader`. Augmentation (if
    enabled) uses torch's global RNG, so it is reproducible under
    ``torch.manual_seed`` and per-worker seeding.

    For fast training loops, skip per-sample indexing: take ``.images`` /
    ``.labels`` (or ``.tensors``) directly, or call :meth:`get_batch`.

    Attributes:
        images: uint8 tensor ``(N, C, H, W)``, raw pixel values 0..255.
        labels: int64 tensor ``(N,)``.
        mean, std: float32 tensors ``(C,)`` used for normalisation.
        augment: whether random crop (zero-pad by ``padding``) and, with ``flip``, horizontal flip are applied.
        padding, flip: the augmentation's shift range and mirroring (default: the CIFAR pad-4 crop + flip).
        classes: class names indexed by label.
    """

    def __init__(
        self,
        images: torch.Tensor | np.ndarray,
        labels: torch.Tensor | np.ndarray,
        mean: Sequence[float],
        std: Sequence[float],
        augment: bool = False,
        classes: Sequence[str] = (),
        padding: int = 4,
        flip: bool = True,
    ) -> None:
        self.images = torch.as_tensor(images)
        self.labels = torch.as_tensor(labels, dtype=torch.int64)
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {tuple(self.images.shape)} {self.images.dtype}")
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")
        self.mean = torch.tensor(mean, dtype=torch.float32)
        self.std = torch.tensor(std, dtype=torch.float32)
        self.augment = augment
        self.padding, self.flip = padding, flip
        self.classes = tuple(classes)

    @property
    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(images, labels)``: the raw uint8 images and int64 labels (like TensorDataset)."""
        return self.images, self.labels

    def __len__(self) -> int:
        """Number of samples."""
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        """Return ``(normalised float32 image (C, H, W), label)``."""
        image = self.images[index]
        if self.augment:
            image = random_crop_flip(image, self.padding, self.flip)
        return normalize(image, self.mean, self.std), int(self.labels[index])

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, int]]:
        """Batched fetch used by DataLoader (torch >= 2.1): one vectorised
        :meth:`get_batch` instead of ``len(indices)`` calls to ``__getitem__``."""
        images, labels = self.get_batch(indices)
        return list(zip(images.unbind(0), labels.tolist()))

    def get_batch(
        self, indices: torch.Tensor | Sequence[int] | slice, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(normalised float32 (B, C, H, W), int64 labels (B,))`` in one vectorised step.

        Augmentation, if enabled, is applied per image with ``generator`` (or
        the global RNG).
        """
        if not isinstance(indices, slice):
            indices = torch.as_tensor(indices, dtype=torch.int64)
        images = self.images[indices]
        if self.augment:
            images = random_crop_flip(images, self.padding, self.flip, generator=generator)
        return normalize(images, self.mean, self.std), self.labels[indices]

    def __repr__(self) -> str:
        return (
            f"ImageDataset(n={len(self)}, shape={tuple(self.images.shape[1:])}, "
            f"classes={len(self.classes)}, augment={self.augment})"
        )
