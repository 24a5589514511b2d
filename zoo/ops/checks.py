"""Input checks shared by the custom ops' Python entry points.

They run before any kernel (and during torch.compile/export tracing, on fake
tensors), so bad input fails with a Python exception that names the problem
instead of reaching C++.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from zoo import _C

SUPPORTED_DTYPES = (torch.float32, torch.float64)


def check_tensor(op: str, name: str, t: torch.Tensor) -> None:
    """Raise TypeError unless `t` is a float32/float64 tensor on a device zoo has kernels for."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"{op}: {name} has dtype {t.dtype}; zoo's kernels support float32 and float64")
    if t.layout != torch.strided:
        raise TypeError(f"{op}: {name} has layout {t.layout}; zoo's kernels need dense (strided) tensors")
    if t.device.type == "cuda" and not _C.with_cuda:
        raise RuntimeError(
            f"{op}: {name} is on {t.device}, but this zoo build has no CUDA kernels "
            "(rebuild on a machine with CUDA torch and nvcc, or set ZOO_WITH_CUDA=1)"
        )
    if t.device.type not in ("cpu", "cuda"):
        raise RuntimeError(f"{op}: {name} is on {t.device}; zoo has kernels for cpu and cuda only")


def check_matches(op: str, x: torch.Tensor, **others: torch.Tensor | None) -> None:
    """Raise unless every given tensor has x's dtype and device."""
    for name, t in others.items():
        if t is None:
            continue
        check_tensor(op, name, t)
        if t.device != x.device:
            raise ValueError(f"{op}: {name} is on {t.device} but the input is on {x.device}; move both to one device")
        if t.dtype != x.dtype:
            raise TypeError(f"{op}: {name} has dtype {t.dtype} but the input has dtype {x.dtype}")


def check_channel_vector(op: str, name: str, t: torch.Tensor | None, channels: int) -> None:
    """Raise ValueError unless `t` is None or has shape (channels,)."""
    if t is not None and tuple(t.shape) != (channels,):
        raise ValueError(f"{op}: {name} must have shape ({channels},) to match the input's channels, got {tuple(t.shape)}")


def pair(op: str, name: str, value: int | Sequence[int]) -> list[int]:
    """Expand an int or a 2-sequence of ints to a [height, width] list."""
    if isinstance(value, int):
        return [value, value]
    values = list(value)
    if len(values) != 2 or not all(isinstance(v, int) for v in values):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    return values
