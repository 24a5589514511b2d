"""What a model costs: parameters, and floating-point operations per image."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["count_flops", "count_parameters"]


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (weights, biases, batch-norm scales and shifts; not running statistics)."""
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_shape: Sequence[int]) -> int:
    """FLOPs of one forward pass of one ``(C, H, W)`` image, counting a multiply-add as 2: convolutions
    and Linear layers only (they are >99% of the work here; activations, pooling and batch norm are left out)."""
    total = 0

    def conv(module: nn.Conv2d, _: tuple, out: torch.Tensor) -> None:
        nonlocal total
        taps = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        total += 2 * out[0].numel() * taps

    def linear(module: nn.Linear, _: tuple, out: torch.Tensor) -> None:
        nonlocal total
        total += 2 * module.in_features * module.out_features

    hooks = [m.register_forward_hook(conv) for m in model.modules() if isinstance(m, nn.Conv2d)]
    hooks += [m.register_forward_hook(linear) for m in model.modules() if isinstance(m, nn.Linear)]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *input_shape))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return total
