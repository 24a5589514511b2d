"""Tensor-only image transforms (no torchvision): normalisation and CIFAR augmentation."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["to_float", "normalize", "random_crop_flip"]


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``0..255`` -> float32 ``[0, 1]``; float input is returned as float32 unchanged."""
    if images.dtype == torch.uint8:
        return images.to(torch.float32).div_(255.0)
    return images.to(torch.float32)


def normalize(images: torch.Tensor, mean: Sequence[float] | torch.Tensor, std: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Scale to ``[0, 1]`` (if uint8) and standardise per channel.

    Works on a single ``(C, H, W)`` image or a ``(B, C, H, W)`` batch.
    """
    x = to_float(images)
    mean = torch.as_tensor(mean, dtype=torch.float32, device=x.device).view(-1, 1, 1)
    std = torch.as_tensor(std, dtype=torch.float32, device=x.device).view(-1, 1, 1)
    return (x - mean) / std


def random_crop_flip(
    images: torch.Tensor, padding: int = 4, flip: bool = True, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Zero-pad by ``padding``, take a random crop of the original size, and
    mirror horizontally with probability 1/2 (the standard CIFAR augmentation).

    Accepts ``(C, H, W)`` or ``(B, C, H, W)`` of any dtype (uint8 or float) and
    returns the same shape and dtype; each image in a batch gets its own crop
    and flip. Randomness comes from ``generator`` or torch's global RNG, so
    results are reproducible under ``torch.manual_seed`` (and, in DataLoader
    workers, under the loader's ``generator``).
    """
    if images.dim() == 3:
        return _crop_flip_one(images, padding, flip, generator)
    x = images
    b, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    dev = x.device
    oy = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=dev)
    ox = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=dev)
    rows = oy[:, None] + torch.arange(h, device=dev)
    cols = ox[:, None] + torch.arange(w, device=dev)
    if flip:
        # Flipping the crop == reading its columns in reverse order.
        mirror = torch.rand(b, generator=generator, device=dev) < 0.5
        cols = torch.where(mirror[:, None], cols.flip(1), cols)
    out = padded[
        torch.arange(b, device=dev)[:, None, None, None],
        torch.arange(c, device=dev)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]
    return out


def _crop_flip_one(image: torch.Tensor, padding: int, flip: bool, generator: torch.Generator | None) -> torch.Tensor:
    # Single image: plain slicing is several times faster than the batched gather.
    _, h, w = image.shape
    padded = F.pad(image, (padding, padding, padding, padding))
    oy, ox = torch.randint(0, 2 * padding + 1, (2,), generator=generator, device=image.device).tolist()
    out = padded[:, oy : oy + h, ox : ox + w]
    if flip and torch.rand((), generator=generator, device=image.device).item() < 0.5:
        out = out.flip(-1)
    return out.contiguous()
