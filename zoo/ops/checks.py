"""What zoo's functional ops check in Python: only what chooses a kernel, and argument normalisation.

Shapes and values (ranks, channel counts, strides, eps, dtypes...) are checked
once, in C++ (``csrc/checks.h``), for every device. Python checks what
decides which kernel the dispatcher runs (a tensor, dense, on a device zoo
has kernels for): a meta or sparse tensor would otherwise reach another
kernel or none. ``pair`` normalises int-or-pair arguments as torchvision's
``_pair`` does.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from zoo import _C


def check_tensor(op: str, name: str, t: object) -> None:
    """Raise unless ``t`` is a dense tensor on a device zoo has kernels for (TypeError / RuntimeError)."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(t).__name__}")
    if t.layout != torch.strided:
        raise TypeError(f"{op}: {name} has layout {t.layout}; zoo's kernels need dense (strided) tensors")
    device = t.device.type
    if device == "cpu" or (device == "cuda" and _C.with_cuda):
        return
    if device == "cuda":
        raise RuntimeError(
            f"{op}: {name} is on {t.device}, but this zoo build has no CUDA kernels "
            "(rebuild on a machine with CUDA torch and nvcc, or set ZOO_WITH_CUDA=1)"
        )
    raise RuntimeError(f"{op}: {name} is on {t.device}; zoo has kernels for cpu and cuda only")


def check_tensors(op: str, **tensors: object) -> None:
    """:func:`check_tensor` for every given tensor that is not None."""
    for name, t in tensors.items():
        if t is not None:
            check_tensor(op, name, t)


def pair(op: str, name: str, value: int | Sequence[int]) -> list[int]:
    """Expand an int or a 2-sequence of ints to a [height, width] list."""
    if isinstance(value, int):
        return [value, value]
    values = list(value)
    if len(values) != 2 or not all(isinstance(v, int) for v in values):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    return values
