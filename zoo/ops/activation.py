"""Activations: the fake kernels of the ``zoo`` activation ops, the functional form, and the activations'
names shared with batch norm's fused ones.

The ops are declared and implemented in C++ (``csrc/ops.cpp``, the formulas in ``csrc/activation.h``,
one kernel per device, autograd in ``csrc/autograd``) and called as ``torch.ops.zoo.*``:

- ``zoo::activation(x, activation, alpha=0.0) -> y``: ``"relu"``, ``"leaky_relu"`` (negative slope
  ``alpha``), ``"elu"`` (``alpha``) or ``"none"`` (a copy) of x, element by element, in x's layout
  (contiguous or channels-last; other layouts give a contiguous output)
- ``zoo::activation_backward(grad_y, x, activation, alpha=0.0) -> dx``: its gradient at x, as torch's
  backward of each computes it from the input

The presets use it for ELU (:class:`zoo.nn.ELU`): torch's CPU ELU is compute-bound (its ``expm1``),
zoo's runs near memory speed (``csrc/cpu/exp.h``). ReLU and LeakyReLU are memory-bound in torch too,
so the models keep torch's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from zoo import _C  # noqa: F401  (loading it registers the ops)
from zoo.ops.checks import DISPATCH_ERRORS, check_fake_devices, raise_dispatch_error

FUSED_ACTIVATIONS = ("relu", "leaky_relu", "elu")
"""The activations zoo's kernels compute (``activation=`` of :func:`zoo.ops.batch_norm_activation` too)."""

activation_op = torch.ops.zoo.activation.default
activation_backward = torch.ops.zoo.activation_backward.default


def _like(x: Tensor) -> Tensor:
    # The kernels keep a contiguous or 4-D channels-last layout and make anything else contiguous.
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.empty_like(x, memory_format=torch.channels_last)
    return x.new_empty(x.shape)


@torch.library.register_fake("zoo::activation")
def _(x, activation, alpha=0.0):
    return _like(x)


@torch.library.register_fake("zoo::activation_backward")
def _(grad_y, x, activation, alpha=0.0):
    check_fake_devices("zoo activation_backward", x, grad_y=grad_y)
    torch._check_value(grad_y.shape == x.shape, lambda: "zoo activation: grad_y must have x's shape")
    return _like(x)


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """``torch.nn.functional.elu(x, alpha)`` on zoo's kernels (not in place).

    Values and gradients agree with torch's to a few ulp: the exponentials are zoo's own
    (``csrc/cpu/exp.h``, about 1 ulp from exact, as torch's are). NaN stays NaN. Bad dtypes
    raise TypeError.
    """
    try:
        return activation_op(x, "elu", float(alpha))
    except DISPATCH_ERRORS as error:
        raise_dispatch_error("zoo.ops.elu", error, input=x)


def torch_activation(y: Tensor, activation: str, alpha: float) -> Tensor:
    """``activation`` (a :data:`FUSED_ACTIVATIONS` name or ``"none"``) of ``y`` by torch's own op."""
    if activation == "relu":
        return F.relu(y)
    if activation == "leaky_relu":
        return F.leaky_relu(y, alpha)
    if activation == "elu":
        return F.elu(y, alpha)
    return y
