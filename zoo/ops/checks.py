"""What zoo's functional ops check in Python: what chooses a kernel, and argument normalisation.

Shapes and values (ranks, channel counts, strides, eps, dtypes...) are checked
once, in C++ (``csrc/checks.h``), for every device. What decides which kernel
the dispatcher runs (a tensor, dense, on a device zoo has kernels for) is
checked by :func:`check_tensors` only after a call failed with one of
:data:`DISPATCH_ERRORS`, to replace the dispatcher's message ("Could not run
'zoo::conv2d' with arguments from the 'SparseCPU' backend...") with one that
names the argument: every layer call would otherwise pay about 0.2 us per
tensor for checks that pass. A meta tensor mixed with real ones reaches the
fake kernels, which refuse it with :func:`check_fake_devices`.
:func:`zoo.ops.sync_batch_norm` checks first, as before: a rank that failed
half-way through its collectives would leave the others waiting.

``pair`` normalises int-or-pair arguments as torchvision's ``_pair`` does,
accepting the integers torch accepts.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import NoReturn

import torch

from zoo import _C


# What a zoo op call raises when a tensor argument cannot reach a zoo kernel: the dispatcher's
# NotImplementedError (no kernel for the sparse / MPS / CUDA-without-kernels backend), its
# RuntimeError for a non-tensor argument, AttributeError from a non-tensor's missing methods.
DISPATCH_ERRORS = (AttributeError, NotImplementedError, RuntimeError)


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


def raise_dispatch_error(op: str, error: BaseException, **tensors: object) -> NoReturn:
    """Re-raise ``error`` (one of :data:`DISPATCH_ERRORS` from an op call), or check_tensors' message if a tensor caused it."""
    try:
        check_tensors(op, **tensors)
    except (TypeError, RuntimeError) as clear:
        raise clear from None
    raise error


def check_fake_devices(op: str, x: torch.Tensor, **tensors: torch.Tensor | None) -> None:
    """In a fake kernel: ValueError unless every given tensor is on x's device (as the C++ checks say it).

    A meta tensor among real ones dispatches to the fake kernel, which would
    otherwise return an uninitialised tensor on x's device.
    """
    for name, t in tensors.items():
        if t is not None and t.device != x.device:
            raise ValueError(f"{op}: {name} is on {t.device} but x is on {x.device}")


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
