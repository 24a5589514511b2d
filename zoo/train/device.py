"""The torch device a ``--device`` name asks for, refused with one clear line when this machine lacks it."""

from __future__ import annotations

import torch

__all__ = ["resolve_device"]


def resolve_device(name: str) -> torch.device:
    """``torch.device(name)`` once it is known to work here: ``cpu``, or ``cuda``/``cuda:N`` with that GPU present.

    Raises:
        ValueError: not a device name, a device zoo has no kernels for, or a GPU this machine does not have.
    """
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {name!r}: expected cpu, cuda or cuda:N") from None
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise ValueError(f"device {name!r}: zoo's kernels run on cpu or cuda")
    if not torch.backends.cuda.is_built():
        raise ValueError(f"device {name!r}: this torch ({torch.__version__}) is a CPU-only build; use --device cpu")
    if not torch.cuda.is_available():
        raise ValueError(f"device {name!r}: no CUDA GPU is visible; use --device cpu")
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    return device
