"""What zoo's functional ops check in Python: only what chooses a kernel, and argument normalisation.

Shapes and values (ranks, channel counts, strides, eps, dtypes...) are checked
once, in C++ (``csrc/checks.h``), for every device. Python checks what
decides which kernel the dispatcher runs (a tensor, dense, on a device zoo
has kernels for): a meta or sparse tensor would otherwise reach another
kernel or none. ``pair`` normalises int-or-pair arguments as torchvision's
``_pair`` does, accepting the integers torch accepts.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import torch

from zoo import _C


def check_tensor(op: str, name: str, t: object) -> None:
    """Raise unless ``t`` is a dense tensor on a device zoo has kernels for (TypeError / RuntimeError)."""
    # The common case first, in the fewest attribute reads: every op call pays for this.
    if isinstance(t, torch.Tensor) and t.layout == torch.strided and (t.is_cpu or (t.is_cuda and _C.with_cuda)):
        return
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


def _index(op: str, name: str, value: object, given: object) -> int:
    """``value`` as an int if it is an integer (int, numpy or 0-d tensor integer; not bool), else TypeError."""
    if not isinstance(value, bool):
        try:
            return operator.index(value)
        except TypeError:
            pass
    raise TypeError(f"{op}: {name} must be an int or a sequence of 1 or 2 ints, got {given!r}")


def pair(op: str, name: str, value: int | Sequence[int]) -> list[int]:
    """Expand an integer or a list/tuple of 1 or 2 integers to a [height, width] list, as torch does."""
    if not isinstance(value, (list, tuple)):
        return [_index(op, name, value, value)] * 2
    values = [_index(op, name, v, value) for v in value]
    if len(values) == 1:
        return values * 2
    if len(values) != 2:
        raise ValueError(f"{op}: {name} must be an int or a sequence of 1 or 2 ints, got {value!r}")
    return values
